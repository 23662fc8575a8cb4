// Delivery of events to every target the file names: a queue per target, tried in order with
// backoff, so a slow or dead endpoint delays only its own later events and never a backup.
// `send` returns at once; `flush` waits (bounded) at exit; timers never keep the process alive.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { AmberError } from '../../core/errors.ts';
import { createMailer } from './email.ts';
import type { AmberEvent } from './event.ts';
import { PING_EVENTS, ping } from './ping.ts';
import { EVENT_TYPES, type EventType, type NotifyTarget } from './targets.ts';
import { postEvent } from './webhook.ts';

export interface Notifier {
  send(event: AmberEvent): void;
  /** Resolves once every queue is empty, or after `deadlineMs`, whichever is first. */
  flush(deadlineMs: number): Promise<void>;
  close(): void;
}

export interface NotifierOptions {
  /** Warnings about deliveries: `msg`, `target` (no secrets: a URL's origin only), `error`. */
  log: (line: Record<string, unknown>) => void;
  /** Waits before the second, third, … attempt; default 2 s, 10 s, 1 min, 5 min. */
  retryDelaysMs?: number[];
  /** Events kept per target while its endpoint is down; the oldest go first. */
  queueLimit?: number;
  host?: string;
}

const RETRY_DELAYS_MS = [2_000, 10_000, 60_000, 300_000];

interface Channel {
  describe: string;
  events: Set<EventType>;
  sources?: Set<string>;
  deliver(event: AmberEvent): Promise<void>;
  close(): void;
  queue: AmberEvent[];
  busy: boolean;
}

export function createNotifier(targets: NotifyTarget[], options: NotifierOptions): Notifier {
  const delays = options.retryDelaysMs ?? RETRY_DELAYS_MS;
  const limit = options.queueLimit ?? 500;
  const host = options.host ?? hostname();
  // close() aborts deliveries in flight: a hanging endpoint must not hold the process at exit.
  const abort = new AbortController();
  const channels = targets.map((target) => channelOf(target, abort.signal));
  const timers = new Set<NodeJS.Timeout>();
  const idle = new Set<() => void>();
  let closed = false;

  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timer.unref();
      timers.add(timer);
    });
  const settled = () => {
    if (channels.every((channel) => !channel.busy)) for (const resolve of idle) resolve();
  };

  async function drain(channel: Channel): Promise<void> {
    channel.busy = true;
    while (!closed && channel.queue.length > 0) {
      const event = channel.queue[0];
      for (let attempt = 0; ; attempt++) {
        try {
          await channel.deliver(event);
          break;
        } catch (error) {
          const last = attempt >= delays.length || closed;
          options.log({
            msg: last ? 'notification dropped after its last attempt' : 'notification failed; retrying',
            target: channel.describe,
            event: event.type,
            attempt: attempt + 1,
            error: scrubUrls((error as Error).message),
            ...(last ? {} : { retryInSeconds: delays[attempt] / 1000 }),
          });
          if (last) break;
          await wait(delays[attempt]);
        }
      }
      channel.queue.shift();
    }
    channel.busy = false;
    settled();
  }

  return {
    send(original) {
      if (closed) return;
      const event: AmberEvent = { ...original, id: original.id ?? randomUUID(), host: original.host ?? host };
      for (const channel of channels) {
        if (!channel.events.has(event.type)) continue;
        if (channel.sources && !(event.source && channel.sources.has(event.source))) continue;
        if (channel.queue.length >= limit) {
          const dropped = channel.queue.splice(1, 1)[0];
          options.log({
            msg: 'notification queue full: the oldest waiting event was dropped',
            target: channel.describe,
            event: dropped?.type,
          });
        }
        channel.queue.push(event);
        if (!channel.busy) void drain(channel);
      }
    },
    async flush(deadlineMs) {
      if (channels.every((channel) => !channel.busy)) return;
      await Promise.race([
        new Promise<void>((resolve) => idle.add(resolve)),
        wait(deadlineMs).then(() => {
          const left = channels.reduce((sum, channel) => sum + channel.queue.length, 0);
          if (left > 0) options.log({ msg: 'notifications not delivered before exit', waiting: left });
        }),
      ]);
    },
    close() {
      closed = true;
      abort.abort();
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const channel of channels) channel.close();
      for (const resolve of idle) resolve();
    },
  };
}

function channelOf(target: NotifyTarget, signal: AbortSignal): Channel {
  const base = {
    queue: [],
    busy: false,
    sources: target.sources && new Set(target.sources),
    close: () => {},
  };
  switch (target.kind) {
    case 'webhook': {
      const secret = target.secretFile ? readSecret(target.secretFile) : undefined;
      return {
        ...base,
        describe: `webhook ${new URL(target.url).origin}`,
        events: new Set(target.events ?? EVENT_TYPES),
        deliver: (event) => postEvent(target.url, event, secret, signal),
      };
    }
    case 'ping':
      return {
        ...base,
        describe: `ping ${new URL(target.url).origin}`,
        events: new Set(target.events ?? PING_EVENTS),
        deliver: (event) => ping(target.url, event, signal),
      };
    case 'email': {
      const mailer = createMailer(target);
      return {
        ...base,
        describe: `email ${new URL(target.smtp).host} to ${target.to.join(', ')}`,
        events: new Set(target.events ?? EVENT_TYPES.filter((type) => type !== 'backup.started')),
        deliver: (event) => mailer.send(event),
        close: () => mailer.close(),
      };
    }
  }
}

/**
 * A delivery's error without the secrets its URL may hold (a ping's UUID path, a ?token=, a
 * user:password fetch quotes whole when it refuses it): each URL in it cut to its origin.
 */
export function scrubUrls(message: string): string {
  return message.replace(/\bhttps?:\/\/[^\s"'<>]+/g, (url) => {
    try {
      return new URL(url).origin;
    } catch {
      return '<url>';
    }
  });
}

/** The key is the file's bytes less a final newline, so `openssl rand -hex 32 > FILE` works as written. */
function readSecret(file: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (cause) {
    throw new AmberError('CONFIG_INVALID', `cannot read the webhook secret-file ${file}: ${(cause as Error).message}`, {
      hint: 'create the file (e.g. openssl rand -hex 32 > FILE) or correct secret-file',
      cause,
    });
  }
  const key = bytes.at(-1) === 0x0a ? bytes.subarray(0, bytes.at(-2) === 0x0d ? -2 : -1) : bytes;
  if (key.length === 0) throw new AmberError('CONFIG_INVALID', `the webhook secret-file ${file} is empty`);
  return key;
}
