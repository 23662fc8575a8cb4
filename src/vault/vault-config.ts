// The vault's YAML config (`amber vault serve --config FILE`), checked against
// schema/vault.schema.json with every problem at its line and column, like the policy file.
// File names in it are relative to the file.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { AmberError, isAmberError } from '../core/errors.ts';
import { parseDurationMs } from '../core/units.ts';
import { type NotifyTarget, notifyTargetsOf, type RawNotifyTarget } from '../ops/notify/targets.ts';
import { type ConfigProblem, configError, parseYamlConfig, schemaValidator } from '../ops/yaml-config.ts';
import type { VaultObjective } from './rpo-watch.ts';

export interface VaultConfig {
  data?: string;
  listen?: string;
  tls?: { cert: string; key: string };
  memoryMiB?: number;
  store?: string;
  objectives: VaultObjective[];
  notify: NotifyTarget[];
}

interface RawVaultConfig {
  data?: string;
  listen?: string;
  tls?: { cert: string; key: string };
  memoryMiB?: number;
  store?: string;
  objectives?: { repo: string; writer?: string; rpo: string }[];
  notify?: RawNotifyTarget[];
}

export function readVaultConfig(path: string): VaultConfig {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new AmberError('CONFIG_INVALID', `cannot read the vault config ${file}: ${(cause as Error).message}`, {
      cause,
    });
  }
  const parsed = parseYamlConfig(text, schemaValidator('vault.schema.json'));
  if (parsed.problems.length > 0) throw configError(file, 'the vault config', parsed.problems);
  const raw = parsed.value as RawVaultConfig;
  const fileAt = (name: string | undefined) => (name === undefined ? undefined : resolve(dirname(file), name));
  const problems: ConfigProblem[] = [];
  const objectives = (raw.objectives ?? []).map((objective, i) => ({
    repo: objective.repo,
    writer: objective.writer,
    rpoMs: rpoOf(objective.rpo, (message) => problems.push(parsed.at(['objectives', i, 'rpo'], message))),
  }));
  if (problems.length > 0) throw configError(file, 'the vault config', problems);
  return {
    data: fileAt(raw.data),
    listen: raw.listen,
    tls: raw.tls && { cert: fileAt(raw.tls.cert)!, key: fileAt(raw.tls.key)! },
    memoryMiB: raw.memoryMiB,
    store: raw.store,
    objectives,
    notify: notifyTargetsOf(raw.notify ?? [], fileAt),
  };
}

function rpoOf(text: string, problem: (message: string) => void): number {
  try {
    return parseDurationMs(text);
  } catch (error) {
    if (!isAmberError(error)) throw error;
    problem(error.message);
    return 0;
  }
}

/**
 * `--rpo REPO=DURATION` (any writer's snapshot counts) or `--rpo REPO/WRITER=DURATION` (only that
 * writer token's, by id or label).
 */
export function parseRpoFlag(text: string): VaultObjective {
  const match = /^([a-z0-9][a-z0-9_-]{0,62})(?:\/([^=]+))?=(.+)$/.exec(text);
  if (!match)
    throw new AmberError('USAGE', `--rpo ${text}: write REPO=DURATION or REPO/WRITER=DURATION, e.g. finance=26h`, {
      hint: 'WRITER is a writer token id or label (amber vault token list)',
    });
  try {
    return { repo: match[1], writer: match[2], rpoMs: parseDurationMs(match[3]) };
  } catch (error) {
    if (isAmberError(error)) throw new AmberError('USAGE', `--rpo ${text}: ${error.message}`, { hint: error.hint });
    throw error;
  }
}
