// The deployment files in the package stay true: the alert rules use only metrics Amber exports,
// and the systemd units are accepted by systemd itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

test('every metric the alert rules use is one the agent or the vault exports, and every rule is complete', () => {
  const rules = parse(read('deploy/prometheus/amber-alerts.yml')) as {
    groups: {
      name: string;
      rules: { alert: string; expr: string; labels: { severity: string }; annotations: object }[];
    }[];
  };
  const exported = new Set(
    [read('src/ops/agent-metrics.ts'), read('src/vault/rpo-watch.ts'), read('src/vault/metrics.ts')].flatMap((code) =>
      [...code.matchAll(/['"](amber_[a-z_]+)['"]|^\s*'# TYPE (amber_[a-z_]+) /gm)].map((m) => m[1] ?? m[2]),
    ),
  );
  assert.ok(exported.has('amber_rpo_age_seconds') && exported.has('amber_vault_rpo_missed'), [...exported].join(' '));
  const used = rules.groups.flatMap((group) =>
    group.rules.flatMap((rule) => {
      assert.ok(rule.alert && rule.expr && rule.labels?.severity && rule.annotations, JSON.stringify(rule));
      return [...rule.expr.matchAll(/\bamber_[a-z_]+/g)].map((m) => m[0]);
    }),
  );
  assert.ok(used.length >= 7, used.join(' '));
  assert.deepEqual(
    used.filter((name) => !exported.has(name)),
    [],
  );
});

const systemd = spawnSync('systemd-analyze', ['--version']).status === 0 ? false : 'systemd-analyze is not installed';

test('systemd accepts both units (with the binary at the checkout path)', { skip: systemd }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'amber-units-'));
  try {
    const units = ['amber-agent.service', 'amber-vault.service'].map((name) => {
      const text = read(`deploy/systemd/${name}`);
      assert.match(text, /^ExecStart=\/usr\/local\/bin\/amber /m);
      assert.match(text, /^NoNewPrivileges=yes$/m);
      assert.match(text, /^ProtectSystem=strict$/m);
      writeFileSync(join(dir, name), text.replace('/usr/local/bin/amber', join(ROOT, 'bin/amber.js')));
      return join(dir, name);
    });
    const verified = spawnSync('systemd-analyze', ['verify', ...units], { encoding: 'utf8' });
    assert.equal(verified.status, 0, verified.stderr);
    assert.equal(verified.stderr.trim(), '', verified.stderr);
    assert.match(read('deploy/systemd/amber-vault.service'), /^User=amber-vault$/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
