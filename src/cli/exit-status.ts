// The only place that maps error codes to process exit statuses (documented in docs/errors.md).
import type { ErrorCode } from '../core/errors.ts';

export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  /** Backup finished but skipped something, or a file changed while read; restore finished but some entries could not be restored; a copy left snapshots out. */
  partial: 3,
  repoNotFound: 10,
  wrongPassword: 12,
  interrupted: 130,
} as const;

const BY_CODE: Partial<Record<ErrorCode, number>> = {
  USAGE: EXIT.usage,
  INVALID_DURATION: EXIT.usage,
  PASSWORD_REQUIRED: EXIT.usage,
  REPO_NOT_FOUND: EXIT.repoNotFound,
  WRONG_PASSWORD: EXIT.wrongPassword,
  KEY_REVOKED: EXIT.wrongPassword,
  TOKEN_INVALID: EXIT.wrongPassword,
  INTERRUPTED: EXIT.interrupted,
  RESTORE_INCOMPLETE: EXIT.partial,
  COPY_INCOMPLETE: EXIT.partial,
  KEY_AMBIGUOUS: EXIT.usage,
  CONFIG_INVALID: EXIT.usage,
  SNAPSHOT_AMBIGUOUS: EXIT.usage,
};

export function exitStatusFor(code: ErrorCode): number {
  return BY_CODE[code] ?? EXIT.error;
}
