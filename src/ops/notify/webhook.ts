// A webhook delivery: the event's JSON POSTed, signed with HMAC-SHA-256 when the target has a
// secret, so a receiver can tell Amber's events from anyone's who found the URL.
import { createHmac } from 'node:crypto';
import { AMBER_VERSION } from '../../core/version.ts';
import type { AmberEvent } from './event.ts';

export const DELIVERY_TIMEOUT_MS = 10_000;

/** `sha256=<hex>` of the body under the secret: what `X-Amber-Signature` carries. */
export function signature(secret: Buffer, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export async function postEvent(
  url: string,
  event: AmberEvent,
  secret: Buffer | undefined,
  signal: AbortSignal,
): Promise<void> {
  const body = JSON.stringify(event);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': `amber/${AMBER_VERSION}`,
    'x-amber-event': event.type,
  };
  if (event.id) headers['x-amber-delivery'] = event.id;
  if (secret) headers['x-amber-signature'] = signature(secret, body);
  await post(url, body, headers, signal);
}

/** One POST that must answer 2xx within the timeout; redirects are failures (the body is signed for this URL). */
export async function post(
  url: string,
  body: string,
  headers: Record<string, string>,
  signal: AbortSignal,
): Promise<void> {
  const response = await fetch(url, {
    method: 'POST',
    body,
    headers,
    redirect: 'manual',
    signal: AbortSignal.any([signal, AbortSignal.timeout(DELIVERY_TIMEOUT_MS)]),
  });
  await response.body?.cancel();
  if (response.status < 200 || response.status > 299) throw new Error(`HTTP ${response.status} ${response.statusText}`);
}
