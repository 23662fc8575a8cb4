// PLACEHOLDER until branch agent-policy-file lands (no validation): the API agreed with it.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { parseDurationMs } from '../core/units.ts';
import type { PolicyConfig, RepositoryConfig } from './policy-types.ts';
import { parseSchedule, type Schedule } from './schedule.ts';

const schedule = (text: string): Schedule => {
  const parsed = parseSchedule(text);
  if ('problem' in parsed) throw new Error(parsed.problem);
  return parsed;
};
const ms = (text: unknown) => (text === undefined ? undefined : parseDurationMs(String(text)));

export async function readPolicyFile(path: string): Promise<PolicyConfig> {
  const file = resolve(path);
  return parsePolicyText(await readFile(file, 'utf8'), file);
}

// biome-ignore lint/suspicious/noExplicitAny: placeholder
export function parsePolicyText(text: string, file: string): PolicyConfig {
  const doc = parse(text);
  const at = (p?: string) => (p === undefined ? undefined : resolve(dirname(file), p));
  const repositories = new Map<string, RepositoryConfig>();
  for (const [name, r] of Object.entries<any>(doc.repositories ?? {}))
    repositories.set(name, {
      name,
      repo: r.repo,
      passwordFile: at(r['password-file']),
      tokenFile: at(r['token-file']),
      awsProfile: r['aws-profile'],
      check: r.check === undefined ? undefined : schedule(r.check),
    });
  return {
    file,
    repositories,
    sources: (doc.sources ?? []).map((s: any) => ({
      name: s.name,
      paths: s.paths,
      exclude: s.exclude ?? [],
      repository: s.repository,
      schedule: schedule(s.schedule),
      retain: s.retain && {
        hourlyMs: ms(s.retain.hourly),
        dailyMs: ms(s.retain.daily),
        weeklyMs: ms(s.retain.weekly),
        monthlyMs: ms(s.retain.monthly),
        yearlyMs: ms(s.retain.yearly),
        mode: s.retain.mode,
      },
      rpoMs: ms(s.rpo),
      rtoMs: ms(s.rto),
      copyTo: s['copy-to'] ?? [],
      tags: s.tags ?? [],
      host: s.host,
    })),
    copies: (doc.copies ?? []).map((c: any) => ({
      name: c.name,
      from: c.from,
      to: c.to,
      schedule: schedule(c.schedule),
      maxLagMs: ms(c['max-lag']),
      hosts: c.hosts ?? [],
      tags: c.tags ?? [],
    })),
    notify: (doc.notify ?? []).map((n: any) =>
      n.webhook
        ? { kind: 'webhook', url: n.webhook, secretFile: at(n['secret-file']), events: n.events }
        : n.ping
          ? { kind: 'ping', url: n.ping, events: n.events }
          : { kind: 'email', ...n.email, events: n.events },
    ),
    metrics: { listen: doc.metrics?.listen, textfile: at(doc.metrics?.textfile) },
    stateDir: at(doc['state-dir']),
  };
}
