// JSON in one canonical form (RFC 8785, JCS) for the values Amber signs: object keys sorted by UTF-16
// code units, no whitespace, strings and numbers as ECMAScript serialises them. Ids and signatures
// are taken over these bytes, so two parties that hold the same value always hash the same bytes.
import { AmberError } from './errors.ts';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new AmberError('USAGE', `${value} has no JSON form`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, item]) => item !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  throw new AmberError('USAGE', `a ${typeof value} has no JSON form`);
}
