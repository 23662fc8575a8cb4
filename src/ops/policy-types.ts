// The policy file as the agent reads it: what `readPolicyFile` (policy-file.ts) returns once the
// YAML has passed its schema (schema/policy.schema.json) and the cross-checks. Durations are
// milliseconds, schedules parsed; every name a source uses refers to an entry of `repositories`.
import type { RetentionMode } from '../storage/store.ts';
import type { NotifyTarget } from './notify/targets.ts';
import type { Schedule } from './schedule.ts';

export interface RepositoryConfig {
  /** The key under `repositories`. */
  name: string;
  /** A directory, https://VAULT/REPO or s3:… (as `--repo`). */
  repo: string;
  passwordFile?: string;
  /** A vault repository's token, first line of the file. */
  tokenFile?: string;
  /** S3: a profile of the AWS shared files; otherwise the SDK's default chain. */
  awsProfile?: string;
  /** When the agent checks the repository: verify (structure and lock coverage) and pending approval requests. */
  check?: Schedule;
}

/** GFS tiers as per-snapshot locks: the first snapshot of each period is locked for its tier. */
export interface RetainTiers {
  hourlyMs?: number;
  dailyMs?: number;
  weeklyMs?: number;
  monthlyMs?: number;
  yearlyMs?: number;
  mode?: RetentionMode;
}

/** A source's restore drills (src/ops/drill.ts), run by the agent as the job `drill:SOURCE`. */
export interface DrillPolicy {
  everyMs: number;
  schedule: Schedule;
  select: 'latest' | 'random';
  /** Choose among the source's snapshots this recent (default: all). */
  withinMs?: number;
  checks: string[];
  /** A database source: SQL queries run against the throwaway server it is restored into; each must return a row. */
  checkSql: string[];
  /** Which database of a whole-server snapshot the SQL checks run in. */
  database?: string;
  checkTimeoutMs?: number;
  /** Parent of each drill's fresh restore directory (default the system's temporary directory). */
  scratch?: string;
  /** drill.overdue when no drill passed for `everyMs` plus this. */
  graceMs: number;
}

export interface SourceConfig {
  name: string;
  /** Files and directories; empty for a database source (url). */
  paths: string[];
  /** A database by its URL (postgresql://, mysql://) instead of paths. */
  url?: string;
  /** With url: the database's or mailbox's password file. */
  passwordFile?: string;
  /** With an imap url: the OAuth2 access token's file. */
  tokenFile?: string;
  /** With an imap url: the folder patterns to back up (all when absent). */
  folders?: string[];
  /** With an imap url: messages larger than this are left out. */
  maxMessageBytes?: number;
  /** With an s3src url: every version of every object too. */
  versions?: boolean;
  exclude: string[];
  /** Repository name (a key of `repositories`). */
  repository: string;
  schedule: Schedule;
  retain?: RetainTiers;
  rpoMs?: number;
  rtoMs?: number;
  /** Repositories (keys of `repositories`) this site's agent copies the source's snapshots into after each backup. */
  copyTo: string[];
  tags: string[];
  /** The host name recorded in the snapshots; default this machine's. */
  host?: string;
  drill?: DrillPolicy;
}

/** A copy this site's agent runs on its own schedule: from a primary it reads to a repository it writes. */
export interface CopyConfig {
  name: string;
  from: string;
  to: string;
  schedule: Schedule;
  /** Alert (copy.lag) when the copy is behind the primary by more than this. */
  maxLagMs?: number;
  hosts: string[];
  tags: string[];
  /** Only snapshots that backed up all these paths (a copy-to copies its source's). */
  paths?: string[];
  retain?: { ms?: number; mode?: RetentionMode };
  /** The recovery time objective of a recovery from the copy: its drills fail beyond it. */
  rtoMs?: number;
  /** Restore drills of the copy repository, at the copy site (job drill:NAME). */
  drill?: DrillPolicy;
}

export interface MetricsConfig {
  /** host:port for Prometheus to scrape. */
  listen?: string;
  /** A node-exporter textfile, rewritten after every run. */
  textfile?: string;
}

export interface PolicyConfig {
  /** The file it was read from, absolute. */
  file: string;
  repositories: Map<string, RepositoryConfig>;
  sources: SourceConfig[];
  copies: CopyConfig[];
  notify: NotifyTarget[];
  metrics: MetricsConfig;
  /** Where the agent keeps its state (last runs); default /var/lib/amber/agent as root, else ~/.local/state/amber/agent. */
  stateDir?: string;
  /** What is allowed but probably not meant (an RPO shorter than the schedule's interval). */
  warnings?: string[];
}
