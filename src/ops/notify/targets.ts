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
  'drill.passed',
  'drill.failed',
  'drill.overdue',
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

/** A notify entry as the policy file and the vault config write it (schema $defs/notifyTarget). */
export interface RawNotifyTarget {
  webhook?: string;
  'secret-file'?: string;
  email?: { smtp: string; from: string; to: string[]; 'username-file'?: string; 'password-file'?: string };
  ping?: string;
  events?: EventType[];
  sources?: string[];
}

/** The entries of a file that passed its schema; `fileAt` resolves a file name against the file's folder. */
export function notifyTargetsOf(
  entries: RawNotifyTarget[],
  fileAt: (path: string | undefined) => string | undefined,
): NotifyTarget[] {
  return entries.map((n): NotifyTarget => {
    const filter = { events: n.events, sources: n.sources };
    if (n.webhook !== undefined)
      return { kind: 'webhook', url: n.webhook, secretFile: fileAt(n['secret-file']), ...filter };
    if (n.ping !== undefined) return { kind: 'ping', url: n.ping, ...filter };
    const email = n.email!;
    return {
      kind: 'email',
      smtp: email.smtp,
      from: email.from,
      to: email.to,
      usernameFile: fileAt(email['username-file']),
      passwordFile: fileAt(email['password-file']),
      ...filter,
    };
  });
}
