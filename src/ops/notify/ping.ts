// healthchecks.io-style pings: URL/start when a run starts, URL when it succeeds, URL/fail when
// it fails, each with the event as its body (shown as the ping's log). The check's own grace
// period then alerts when the pings stop, which covers an agent that is gone.
import type { AmberEvent } from './event.ts';
import type { EventType } from './targets.ts';
import { post } from './webhook.ts';

const SUFFIX: Partial<Record<EventType, string>> = {
  'backup.started': '/start',
  'backup.succeeded': '',
  'backup.partial': '/fail',
  'backup.failed': '/fail',
  'copy.succeeded': '',
  'copy.failed': '/fail',
  'rpo.missed': '/fail',
  'rpo.recovered': '',
  'copy.lag': '/fail',
  'copy.lag.recovered': '',
  'verify.lock-gap': '/fail',
  'verify.failed': '/fail',
  'drill.passed': '',
  'drill.failed': '/fail',
  'drill.overdue': '/fail',
};

/** The events a ping target hears unless its `events` say otherwise: the runs of jobs. */
export const PING_EVENTS: EventType[] = [
  'backup.started',
  'backup.succeeded',
  'backup.partial',
  'backup.failed',
  'copy.succeeded',
  'copy.failed',
];

export function pingUrl(base: string, type: EventType): string | undefined {
  const suffix = SUFFIX[type];
  return suffix === undefined ? undefined : base.replace(/\/+$/, '') + suffix;
}

export async function ping(base: string, event: AmberEvent, signal: AbortSignal): Promise<void> {
  const url = pingUrl(base, event.type);
  if (url === undefined) return;
  await post(url, JSON.stringify(event), { 'content-type': 'application/json' }, signal);
}
