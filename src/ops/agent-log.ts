// The agent's log: one JSON object a line on stderr, with time, level and msg first, so an operator
// can grep it and a log shipper can parse it (`journalctl -u amber-agent -o cat | jq`).
import type { Clock } from '../core/clock.ts';
import { isoDate } from '../core/units.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type Log = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

export function createJsonLog(stream: NodeJS.WritableStream, clock: Clock): Log {
  return (level, msg, fields = {}) => {
    stream.write(`${JSON.stringify({ time: isoDate(clock.nowMs()), level, msg, ...fields })}\n`);
  };
}
