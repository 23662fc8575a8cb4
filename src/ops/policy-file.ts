// The policy file: YAML checked against schema/policy.schema.json, then the checks a schema cannot
// make (names that refer to repositories, schedules, absolute paths, unique job names), every
// problem of the file reported at once with its line and column. Relative file names in it are
// relative to the file.
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { AmberError, isAmberError } from '../core/errors.ts';
import { parseDurationMs, parseSizeBytes } from '../core/units.ts';
import type { RetentionMode } from '../storage/store.ts';
import { notifyTargetsOf, type RawNotifyTarget } from './notify/targets.ts';
import type {
  CopyConfig,
  DrillPolicy,
  PolicyConfig,
  RepositoryConfig,
  RetainTiers,
  SourceConfig,
} from './policy-types.ts';
import { parseSchedule, type Schedule } from './schedule.ts';
import { displayOfSourceUrl } from '../source/source-url.ts';
import {
  type ConfigProblem,
  closest,
  configError,
  describePath,
  parseYamlConfig,
  schemaValidator,
} from './yaml-config.ts';

export async function readPolicyFile(path: string): Promise<PolicyConfig> {
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new AmberError('CONFIG_INVALID', `cannot read the policy file ${file}: ${(cause as Error).message}`, {
      hint: 'give the file with --config FILE (or AMBER_CONFIG); docs/agent.md shows an example',
      cause,
    });
  }
  return parsePolicyText(text, file);
}

// The file's shape once the schema passed (keys as written).
interface RawRepository {
  repo: string;
  'password-file'?: string;
  'token-file'?: string;
  'aws-profile'?: string;
  check?: string;
}
type RawRetain = Partial<Record<'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly', string>> & {
  mode?: RetentionMode;
};
interface RawSource {
  name: string;
  paths?: string[];
  url?: string;
  'password-file'?: string;
  'token-file'?: string;
  folders?: string[];
  'max-message-size'?: string;
  versions?: boolean;
  exclude?: string[];
  repository: string;
  schedule: string;
  retain?: RawRetain;
  rpo?: string;
  rto?: string;
  'copy-to'?: string[];
  tags?: string[];
  host?: string;
  drill?: {
    every: string;
    select?: 'latest' | 'random';
    within?: string;
    checks?: string[];
    'check-sql'?: string[];
    database?: string;
    'check-timeout'?: string;
    scratch?: string;
    grace?: string;
  };
}
interface RawCopy {
  name: string;
  from: string;
  to: string;
  schedule: string;
  'max-lag'?: string;
  hosts?: string[];
  tags?: string[];
  retain?: { for?: string; mode?: RetentionMode };
  rto?: string;
  drill?: RawSource['drill'];
}
interface RawPolicy {
  repositories: Record<string, RawRepository>;
  sources: RawSource[];
  copies?: RawCopy[];
  notify?: RawNotifyTarget[];
  metrics?: { listen?: string; textfile?: string };
  'state-dir'?: string;
}

export function parsePolicyText(text: string, file: string): PolicyConfig {
  const parsed = parseYamlConfig(text, schemaValidator('policy.schema.json'));
  if (parsed.problems.length > 0) throw configError(file, 'the policy file', parsed.problems);
  const raw = parsed.value as RawPolicy;
  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];
  const fileAt = (path?: string) => (path === undefined ? undefined : resolve(dirname(file), path));

  const schedule = (path: (string | number)[], text: string): Schedule => {
    const result = parseSchedule(text);
    if ('problem' in result) {
      problems.push(parsed.at(path, result.problem));
      return undefined as unknown as Schedule;
    }
    return result;
  };
  const duration = (path: (string | number)[], text: string | undefined): number | undefined => {
    if (text === undefined) return undefined;
    try {
      return parseDurationMs(text);
    } catch (error) {
      if (!isAmberError(error)) throw error;
      problems.push(parsed.at(path, `${describePath(path, raw)}: ${error.message}`));
      return undefined;
    }
  };
  const names = Object.keys(raw.repositories);
  const repositoryName = (path: (string | number)[], name: string) => {
    if (raw.repositories[name]) return;
    const near = closest(name, names);
    problems.push(
      parsed.at(
        path,
        `unknown repository "${name}"${near ? `; did you mean "${near}"?` : ''} (repositories: ${names.join(', ')})`,
      ),
    );
  };

  const repositories = new Map<string, RepositoryConfig>();
  for (const [name, r] of Object.entries(raw.repositories))
    repositories.set(name, {
      name,
      repo: /^(https?:|s3:)/.test(r.repo) ? r.repo : resolve(dirname(file), r.repo),
      passwordFile: fileAt(r['password-file']),
      tokenFile: fileAt(r['token-file']),
      awsProfile: r['aws-profile'],
      check: r.check === undefined ? undefined : schedule(['repositories', name, 'check'], r.check),
    });

  const jobNames = new Map<string, string>();
  const claim = (name: string, path: (string | number)[], what: string) => {
    const earlier = jobNames.get(name);
    if (earlier) problems.push(parsed.at(path, `the name "${name}" is taken already by ${earlier}: names are unique`));
    else jobNames.set(name, what);
  };

  const sources: SourceConfig[] = raw.sources.map((s, i) => {
    const at = (...rest: (string | number)[]) => ['sources', i, ...rest];
    claim(s.name, at('name'), `sources[${i}]`);
    repositoryName(at('repository'), s.repository);
    (s.paths ?? []).forEach((path, j) => {
      if (!isAbsolute(path))
        problems.push(
          parsed.at(at('paths', j), `the path "${path}" is relative: write it absolute, e.g. /srv/${path}`),
        );
    });
    (s['copy-to'] ?? []).forEach((target, j) => {
      repositoryName(at('copy-to', j), target);
      if (target === s.repository)
        problems.push(parsed.at(at('copy-to', j), `"${target}" is the source's own repository: copy to another one`));
      else claim(`${s.name}-to-${target}`, at('copy-to', j), `the copy of sources[${i}] to ${target}`);
    });
    const parsedSchedule = schedule(at('schedule'), s.schedule);
    if (s.drill) claim(`drill:${s.name}`, at('drill'), `the drills of sources[${i}]`);
    const size = (where: (string | number)[], text: string | undefined) => {
      if (text === undefined) return undefined;
      try {
        return parseSizeBytes(text);
      } catch (error) {
        if (!isAmberError(error)) throw error;
        problems.push(parsed.at(where, error.message));
        return undefined;
      }
    };
    const rpoMs = duration(at('rpo'), s.rpo);
    if (parsedSchedule && rpoMs !== undefined && rpoMs < parsedSchedule.intervalMs())
      warnings.push(
        `${file}: sources[${i}] (${s.name}): the rpo ${s.rpo} is shorter than the schedule "${s.schedule}" allows; it will be missed between runs`,
      );
    if (s.url !== undefined)
      try {
        displayOfSourceUrl(s.url);
      } catch (error) {
        if (!isAmberError(error)) throw error;
        problems.push(parsed.at(at('url'), error.message));
      }
    if (s.url !== undefined && (s.exclude?.length ?? 0) > 0)
      problems.push(parsed.at(at('exclude'), '"exclude" applies to paths, not to a source url'));
    const imap = s.url !== undefined && /^imaps?:\/\//i.test(s.url);
    if (s.versions !== undefined && !(s.url !== undefined && /^s3src(\+https?)?:\/\//i.test(s.url)))
      problems.push(parsed.at(at('versions'), '"versions" applies to an s3src:// url'));
    for (const key of ['token-file', 'folders', 'max-message-size'] as const)
      if (s[key] !== undefined && !imap)
        problems.push(parsed.at(at(key), `"${key}" applies to an imap:// or imaps:// url`));
    return {
      name: s.name,
      paths: s.paths ?? [],
      url: s.url,
      passwordFile: fileAt(s['password-file']),
      tokenFile: fileAt(s['token-file']),
      folders: s.folders,
      maxMessageBytes: size(at('max-message-size'), s['max-message-size']),
      versions: s.versions,
      exclude: s.exclude ?? [],
      repository: s.repository,
      schedule: parsedSchedule,
      retain: s.retain && retainTiers(s.retain, (tier, text) => duration(at('retain', tier), text)),
      rpoMs,
      rtoMs: duration(at('rto'), s.rto),
      copyTo: s['copy-to'] ?? [],
      tags: s.tags ?? [],
      host: s.host,
      drill: s.drill && drillPolicy(s.drill, (key, text) => duration(at('drill', key), text), fileAt),
    };
  });

  const copies: CopyConfig[] = (raw.copies ?? []).map((c, i) => {
    const at = (...rest: (string | number)[]) => ['copies', i, ...rest];
    claim(c.name, at('name'), `copies[${i}]`);
    if (c.drill) claim(`drill:${c.name}`, at('drill'), `the drills of copies[${i}]`);
    repositoryName(at('from'), c.from);
    repositoryName(at('to'), c.to);
    if (c.from === c.to)
      problems.push(parsed.at(at('to'), `"to" is "from" (${c.from}): a copy goes to another repository`));
    return {
      name: c.name,
      from: c.from,
      to: c.to,
      schedule: schedule(at('schedule'), c.schedule),
      maxLagMs: duration(at('max-lag'), c['max-lag']),
      hosts: c.hosts ?? [],
      tags: c.tags ?? [],
      retain: c.retain && { ms: duration(at('retain', 'for'), c.retain.for), mode: c.retain.mode },
      rtoMs: duration(at('rto'), c.rto),
      drill: c.drill && drillPolicy(c.drill, (key, text) => duration(at('drill', key), text), fileAt),
    };
  });

  const notify = notifyTargetsOf(raw.notify ?? [], fileAt);
  (raw.notify ?? []).forEach((n, i) => {
    if (n['secret-file'] !== undefined && n.webhook === undefined)
      problems.push(
        parsed.at(['notify', i, 'secret-file'], '"secret-file" signs webhooks only: move it to a webhook entry'),
      );
    const known = [...raw.sources.map((s) => s.name), ...(raw.copies ?? []).map((c) => c.name)];
    (n.sources ?? []).forEach((name, j) => {
      if (known.includes(name)) return;
      const near = closest(name, known);
      problems.push(
        parsed.at(
          ['notify', i, 'sources', j],
          `unknown source "${name}"${near ? `; did you mean "${near}"?` : ''} (sources and copies: ${known.join(', ')})`,
        ),
      );
    });
  });

  if (problems.length > 0) throw configError(file, 'the policy file', problems);
  return {
    file,
    repositories,
    sources,
    copies,
    notify,
    metrics: { listen: raw.metrics?.listen, textfile: fileAt(raw.metrics?.textfile) },
    stateDir: fileAt(raw['state-dir']),
    warnings,
  };
}

function retainTiers(raw: RawRetain, duration: (tier: string, text?: string) => number | undefined): RetainTiers {
  return {
    hourlyMs: duration('hourly', raw.hourly),
    dailyMs: duration('daily', raw.daily),
    weeklyMs: duration('weekly', raw.weekly),
    monthlyMs: duration('monthly', raw.monthly),
    yearlyMs: duration('yearly', raw.yearly),
    mode: raw.mode,
  };
}

function drillPolicy(
  raw: NonNullable<RawSource['drill']>,
  duration: (key: string, text?: string) => number | undefined,
  fileAt: (path?: string) => string | undefined,
): DrillPolicy | undefined {
  const everyMs = duration('every', raw.every);
  if (everyMs === undefined) return undefined;
  const schedule = parseSchedule(`every ${Math.max(1, Math.round(everyMs / 1000))}s`);
  if ('problem' in schedule) return undefined;
  return {
    everyMs,
    schedule,
    select: raw.select ?? 'random',
    withinMs: duration('within', raw.within),
    checks: raw.checks ?? [],
    checkSql: raw['check-sql'] ?? [],
    database: raw.database,
    checkTimeoutMs: duration('check-timeout', raw['check-timeout']),
    scratch: fileAt(raw.scratch),
    graceMs: duration('grace', raw.grace) ?? Math.min(everyMs, 86_400_000),
  };
}
