// PLACEHOLDER until branch agent-notify lands: webhook only, one try.
import type { AmberEvent } from './event.ts';
import type { NotifyTarget } from './targets.ts';

export interface Notifier {
  send(event: AmberEvent): void;
  flush(deadlineMs: number): Promise<void>;
  close(): void;
}

export function createNotifier(
  targets: NotifyTarget[],
  _options: { log: (line: Record<string, unknown>) => void },
): Notifier {
  const pending = new Set<Promise<unknown>>();
  return {
    send(event) {
      for (const target of targets) {
        if (target.kind !== 'webhook' || (target.events && !target.events.includes(event.type))) continue;
        const p = fetch(target.url, { method: 'POST', body: JSON.stringify(event) }).catch(() => {});
        pending.add(p);
        p.finally(() => pending.delete(p));
      }
    },
    async flush() {
      await Promise.all(pending);
    },
    close() {},
  };
}
