// Vault identities: bearer tokens with one role and one repository scope. A token is shown once, as
// `amber_<id>_<secret>`; the data directory keeps only the SHA-256 of the 256-bit secret, in an
// append-only file of creations and revocations that the server re-reads whenever it changes, so a
// revocation made with `amber vault token revoke` on the data directory works at once.
import { appendFileSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { AmberError } from '../core/errors.ts';
import { isoDate } from '../core/units.ts';

export const ROLES = ['writer', 'reader', 'maintainer', 'auditor', 'approver', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface TokenInfo {
  id: string;
  role: Role;
  /** A repository name, or "*" for every repository (admin tokens that create repositories). */
  repo: string;
  label: string;
  created: string;
  revoked?: string;
}

interface TokenLine {
  op: 'create' | 'revoke';
  id: string;
  role?: Role;
  repo?: string;
  label?: string;
  time: string;
  hash?: string;
}

export const REPO_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const TOKEN = /^amber_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

const tokensPath = (dataDir: string) => join(dataDir, 'vault', 'tokens.jsonl');
const hashOf = (secret: string) => createHash('sha256').update(secret, 'utf8').digest();

export function createToken(
  dataDir: string,
  options: { role: Role; repo: string; label?: string; nowMs: number },
): { token: string; info: TokenInfo } {
  if (!ROLES.includes(options.role))
    throw new AmberError('USAGE', `--role ${options.role}: choose one of ${ROLES.join(', ')}`);
  if (options.repo !== '*' && !REPO_NAME.test(options.repo)) {
    throw new AmberError(
      'USAGE',
      `--repo ${options.repo}: a repository name is 1-63 lowercase letters, digits, - or _ (or * for an admin of every repository)`,
    );
  }
  if (options.repo === '*' && options.role !== 'admin')
    throw new AmberError('USAGE', 'only admin tokens may span every repository (--repo *)');
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const line: TokenLine = {
    op: 'create',
    id,
    role: options.role,
    repo: options.repo,
    label: options.label ?? '',
    time: isoDate(options.nowMs),
    hash: hashOf(secret).toString('hex'),
  };
  append(dataDir, line);
  return {
    token: `amber_${id}_${secret}`,
    info: { id, role: options.role, repo: options.repo, label: line.label!, created: line.time },
  };
}

export function revokeToken(dataDir: string, id: string, nowMs: number): TokenInfo {
  const known = readTokens(dataDir).get(id);
  if (!known)
    throw new AmberError('USAGE', `no token ${id}`, { hint: '`amber vault token list --data DIR` shows them' });
  if (known.info.revoked) throw new AmberError('USAGE', `token ${id} was already revoked on ${known.info.revoked}`);
  const time = isoDate(nowMs);
  append(dataDir, { op: 'revoke', id, time });
  return { ...known.info, revoked: time };
}

export function listTokens(dataDir: string): TokenInfo[] {
  return [...readTokens(dataDir).values()].map(({ info }) => info);
}

function append(dataDir: string, line: TokenLine): void {
  mkdirSync(join(dataDir, 'vault'), { recursive: true, mode: 0o700 });
  appendFileSync(tokensPath(dataDir), `${JSON.stringify(line)}\n`, { mode: 0o600 });
}

function readTokens(dataDir: string): Map<string, { info: TokenInfo; hash: Buffer }> {
  const tokens = new Map<string, { info: TokenInfo; hash: Buffer }>();
  let text = '';
  try {
    text = readFileSync(tokensPath(dataDir), 'utf8');
  } catch {
    return tokens;
  }
  for (const raw of text.split('\n')) {
    if (!raw.trim()) continue;
    let line: TokenLine;
    try {
      line = JSON.parse(raw);
    } catch {
      continue; // a torn last line from a crash: that token was never shown
    }
    if (line.op === 'create' && line.hash && line.role && line.repo !== undefined) {
      tokens.set(line.id, {
        info: { id: line.id, role: line.role, repo: line.repo, label: line.label ?? '', created: line.time },
        hash: Buffer.from(line.hash, 'hex'),
      });
    } else if (line.op === 'revoke' && tokens.has(line.id)) {
      tokens.get(line.id)!.info.revoked = line.time;
    }
  }
  return tokens;
}

/** Checks bearer tokens against the data directory, re-reading it whenever the file changes. */
export function createTokenChecker(dataDir: string): (bearer: string | undefined) => TokenInfo | undefined {
  let stamp = '';
  let tokens = new Map<string, { info: TokenInfo; hash: Buffer }>();
  return (bearer) => {
    let current = 'missing';
    try {
      const stat = statSync(tokensPath(dataDir));
      current = `${stat.mtimeMs}:${stat.size}:${stat.ino}`;
    } catch {
      // no tokens yet
    }
    if (current !== stamp) {
      tokens = readTokens(dataDir);
      stamp = current;
    }
    const match = bearer === undefined ? null : TOKEN.exec(bearer);
    if (!match) return undefined;
    const known = tokens.get(match[1]);
    if (!known || known.info.revoked) return undefined;
    return timingSafeEqual(hashOf(match[2]), known.hash) ? known.info : undefined;
  };
}
