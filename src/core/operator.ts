// Who runs Amber here: the local user and host, as recorded in snapshots, key files, holds, clock
// confirmations and audit entries. The one place that asks the operating system.
import { hostname, userInfo } from 'node:os';

/** The host's name, as the operating system gives it. */
export function hostName(): string {
  return hostname();
}

/** The local user's name; $USER when this uid has no passwd entry (some containers), else ''. */
export function userName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? '';
  }
}

/** Who is at the keyboard: user@host ('unknown' for a user with no name at all). */
export function operatorName(): string {
  return `${userName() || 'unknown'}@${hostName()}`;
}
