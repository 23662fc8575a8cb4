// The JSON every notification carries (docs/notifications.md): a stable `type`, when, where from,
// and what to read. Receivers match on `type` and `code`; `message` is for people.
import type { EventType } from './targets.ts';

export interface AmberEvent {
  type: EventType;
  /** ISO time the event happened. */
  time: string;
  /** A unique id: a receiver that sees it twice (a retried delivery) can drop the repeat. */
  id?: string;
  /** The machine that sent it (the agent's host, or the vault's). */
  host?: string;
  /** The source (or, for a copy, the source or copy name) it is about. */
  source?: string;
  /** The repository name from the policy file, or the vault's repository. */
  repository?: string;
  /** Vault side: the writer token's id whose snapshots stopped. */
  writer?: string;
  /** The error code (docs/errors.md) of a failure. */
  code?: string;
  message: string;
  details?: Record<string, unknown>;
}

/** `[amber] backup.failed: finance (WRONG_PASSWORD) on db1`: a subject line for mail. */
export function eventTitle(event: AmberEvent): string {
  const about = event.source ?? event.writer ?? event.repository;
  return `[amber] ${event.type}${about ? `: ${about}` : ''}${event.code ? ` (${event.code})` : ''}${event.host ? ` on ${event.host}` : ''}`;
}

/** The event as plain text: the message, then each field on its own line. */
export function eventText(event: AmberEvent): string {
  const lines = [event.message, ''];
  for (const key of ['type', 'time', 'host', 'source', 'repository', 'writer', 'code', 'id'] as const)
    if (event[key] !== undefined) lines.push(`${key}: ${event[key]}`);
  if (event.details)
    for (const [key, value] of Object.entries(event.details))
      if (value !== undefined) lines.push(`${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
  return `${lines.join('\n')}\n`;
}
