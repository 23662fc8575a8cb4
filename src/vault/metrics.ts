// Prometheus metrics for the vault, in the text exposition format. The endpoint needs no token, so
// repository names and writer token ids appear only where the operator asked for them: the
// repositories given an RPO objective (`vault serve --rpo`), whose freshness is the point.
import type { Clock } from '../core/clock.ts';
import { renderFamilies } from '../ops/prometheus-text.ts';
import type { RpoWatch } from './rpo-watch.ts';

export interface Metrics {
  request(method: string, status: number, durationMs: number): void;
  received(bytes: number): void;
  sent(bytes: number): void;
  render(): string;
}

/** `memoryInUse`: the bytes of the memory budget requests hold now (a gauge). */
export function createMetrics(clock: Clock, memoryInUse: () => number = () => 0, rpo?: RpoWatch): Metrics {
  const requests = new Map<string, number>();
  let seconds = 0;
  let count = 0;
  let bytesIn = 0;
  let bytesOut = 0;
  const started = clock.nowMs();
  return {
    request(method, status, durationMs) {
      const key = `method="${method.replace(/[^A-Z]/g, '')}",status="${status}"`;
      requests.set(key, (requests.get(key) ?? 0) + 1);
      seconds += durationMs / 1000;
      count += 1;
    },
    received: (bytes) => void (bytesIn += bytes),
    sent: (bytes) => void (bytesOut += bytes),
    render() {
      const lines = [
        '# HELP amber_vault_requests_total Requests answered, by method and status.',
        '# TYPE amber_vault_requests_total counter',
        ...[...requests].map(([labels, value]) => `amber_vault_requests_total{${labels}} ${value}`),
        '# HELP amber_vault_request_seconds Time spent answering requests.',
        '# TYPE amber_vault_request_seconds summary',
        `amber_vault_request_seconds_sum ${seconds}`,
        `amber_vault_request_seconds_count ${count}`,
        '# HELP amber_vault_received_bytes_total Object bytes stored.',
        '# TYPE amber_vault_received_bytes_total counter',
        `amber_vault_received_bytes_total ${bytesIn}`,
        '# HELP amber_vault_sent_bytes_total Object bytes served.',
        '# TYPE amber_vault_sent_bytes_total counter',
        `amber_vault_sent_bytes_total ${bytesOut}`,
        '# HELP amber_vault_memory_bytes_in_use Bytes of the memory budget uploads and reads hold now.',
        '# TYPE amber_vault_memory_bytes_in_use gauge',
        `amber_vault_memory_bytes_in_use ${memoryInUse()}`,
        '# HELP amber_vault_start_time_seconds When the vault started.',
        '# TYPE amber_vault_start_time_seconds gauge',
        `amber_vault_start_time_seconds ${Math.floor(started / 1000)}`,
      ];
      return `${lines.join('\n')}\n${rpo ? renderFamilies(rpo.families(clock.nowMs())) : ''}`;
    },
  };
}
