// One error type for every expected failure: a stable code, a message naming the object and the
// values, and a hint saying what to do. Programmer mistakes stay plain Error/assert.

export const ERROR_CODES = {
  USAGE: 'The command line is not valid',
  INVALID_DURATION: 'A duration or date could not be parsed',
  PASSWORD_REQUIRED: 'No passphrase was given and there is no terminal to ask on',
  REPO_NOT_FOUND: 'No repository exists at the given location',
  REPO_EXISTS: 'A repository already exists at the given location',
  WRONG_PASSWORD: 'No key in the repository opens with the given passphrase or key file',
  CONFIG_CORRUPT: 'The repository config object is damaged or was replaced',
  FORMAT_UNSUPPORTED: 'The repository uses a format version or feature this Amber does not know',
  OBJECT_NOT_FOUND: 'A stored object does not exist',
  OBJECT_EXISTS: 'A stored object already exists and objects are never overwritten',
  OBJECT_CORRUPT: 'A stored object failed its hash, authentication or structure check',
  SIGNATURE_INVALID: 'A record is unsigned, badly signed or signed by a key without the authority',
  KEY_NOT_FOUND: 'No key with the given id exists in the repository',
  KEY_ALREADY_REVOKED: 'The key was revoked before; a second revocation is refused',
  KEY_REVOKED: 'The key was revoked and its signatures are no longer accepted',
  KEY_AMBIGUOUS: 'A short key id matches more than one key',
  KEY_IN_USE: 'The operation would revoke the key that is doing it',
  PASSPHRASE_IN_USE: 'The passphrase for a new key already opens another key of the repository',
  WRITE_ONLY_KEY: 'The operation needs a full-access key; a write-only key cannot read backups',
  SNAPSHOT_NOT_FOUND: 'No snapshot matches the given id',
  SNAPSHOT_AMBIGUOUS: 'A short snapshot id matches more than one snapshot',
  PATH_NOT_FOUND: 'A path does not exist in the snapshot',
  SOURCE_NOT_FOUND: 'A path given to back up does not exist',
  SOURCE_UNREADABLE: 'A file or directory to back up could not be read',
  XATTRS_UNREADABLE:
    'The extended attributes of a symlink, fifo, socket or device whose name is not valid UTF-8 cannot be read',
  SOURCE_AUTH_FAILED: 'A source (a database or mail server) refused the user or password',
  SOURCE_UNREACHABLE: 'A source (a database or mail server) could not be reached',
  SOURCE_FAILED: 'A source’s own tool (pg_dump, psql) failed; nothing of the run was written as a snapshot',
  SOURCE_TOOL_MISSING: 'The tool a source needs (pg_dump, psql) is not installed',
  SOURCE_CHANGED: 'A file changed while it was read; it was stored as read and flagged',
  SOURCE_TOO_LARGE: 'An item of a source (a mail message) is larger than the configured limit and was left out',
  TARGET_EXISTS: 'A restore would overwrite an existing file or database',
  TARGET_UNWRITABLE: 'The restore target refused a file or directory',
  UNSAFE_PATH: 'A name in a snapshot would write outside the restore target',
  STORAGE_FULL: 'The storage has no space left',
  STORAGE_ACCESS_DENIED: 'The storage refused access',
  TOKEN_INVALID: 'The vault does not accept this token',
  ROLE_FORBIDDEN: "The vault token's role does not allow this",
  OBJECT_TOO_LARGE: 'An upload is larger than the vault accepts',
  UPLOAD_TOO_SLOW: "An upload arrived slower than the vault's minimum rate and was cut off",
  STORAGE_UNSUITABLE:
    'The storage cannot do what Amber needs of it, for example an S3 bucket without versioning or Object Lock',
  STORAGE_TRANSIENT: 'The storage failed in a way that may pass if retried',
  INVALID_OBJECT_NAME: 'An object name is not valid for the storage',
  RETENTION_ACTIVE: 'The object is under retention or legal hold and cannot be removed',
  RETENTION_LOCKED: 'A compliance lock can only be extended; nothing shortens or lifts it',
  APPROVAL_REQUIRED: 'The change needs a request approved by the approver quorum',
  APPROVAL_REFUSED: 'A decision on a request does not count and was not filed',
  POLICY_VIOLATION: 'The retention asked for is outside what the repository policy allows',
  POLICY_LOCKED: 'The repository policy is locked and the change would loosen it',
  LOCK_GAP: 'An object a locked snapshot needs is not retained as long as the lock',
  RESTORE_INCOMPLETE: 'Some entries could not be restored; each one was reported',
  VERIFY_FAILED: 'Verification found missing or damaged data',
  STORAGE_TAMPERED:
    'The storage holds a version or delete marker Amber never writes: someone tried to replace or hide an object',
  AUDIT_TAMPERED: 'The audit log was altered: an entry is edited, missing, reordered or inserted',
  INTERRUPTED: 'The operation was interrupted',
  COPY_INCOMPATIBLE:
    "The copy repository was not made for this primary (`amber init --from-repo`): it does not share the primary's dedup secrets",
  COPY_INCOMPLETE: 'Some snapshots of the primary were not copied; each one was reported',
  COPY_LAG: 'A copy is further behind its primary than the lag bound allows',
  JOB_RUNNING: 'The job is running already (the agent or another `amber run`)',
  CONFIG_INVALID: 'A configuration file (the policy file, the vault config) is not valid',
  DRILL_FAILED: 'A restore drill failed: the restore, its read-back, a check or the RTO objective',
  DRILL_NOT_FOUND: 'No drill with the given id is in the audit log',
  RPO_MISSED: 'A source has no recovery point as recent as its RPO asks, or a copy lags more than its bound',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface AmberErrorOptions {
  hint?: string;
  cause?: unknown;
  details?: Record<string, unknown>;
}

export class AmberError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: AmberErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AmberError';
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }
}

export function isAmberError(error: unknown, code?: ErrorCode): error is AmberError {
  return error instanceof AmberError && (code === undefined || error.code === code);
}
