// Where notifications go, as the policy file (and the vault's config) name them.

/** The event types, stable: receivers match on them. */
export const EVENT_TYPES = [
  'backup.started',
  'backup.succeeded',
  'backup.partial',
  'backup.failed',
  'copy.succeeded',
  'copy.failed',
  'copy.lag',
  'copy.lag.recovered',
  'rpo.missed',
  'rpo.recovered',
  'verify.lock-gap',
  'verify.failed',
  'approval.requested',
  'drill.failed',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface WebhookTarget {
  kind: 'webhook';
  url: string;
  /** File holding the HMAC-SHA-256 key: the body is signed in `X-Amber-Signature: sha256=<hex>`. */
  secretFile?: string;
  /** Only these events; default every one. */
  events?: EventType[];
  /** Only events of these sources (or copies); default all. */
  sources?: string[];
}

export interface EmailTarget {
  kind: 'email';
  /** smtp://host:port (STARTTLS when offered) or smtps://host:port. */
  smtp: string;
  from: string;
  to: string[];
  usernameFile?: string;
  passwordFile?: string;
  /** Default every event but backup.started. */
  events?: EventType[];
  sources?: string[];
}

/** healthchecks.io-style: URL/start when a run starts, URL on success, URL/fail on failure. */
export interface PingTarget {
  kind: 'ping';
  url: string;
  /** Default the runs: backup and copy started, succeeded, partial, failed. */
  events?: EventType[];
  sources?: string[];
}

export type NotifyTarget = WebhookTarget | EmailTarget | PingTarget;
