// The real S3 server of the test suite: a single-node Ceph RADOS Gateway that `.ci/run` starts
// (scripts/s3/start-s3.sh) and names in S3_ENDPOINT, S3_ACCESS_KEY and S3_SECRET_KEY. Without it,
// one skipped test says so for the whole suite, never a silent pass.
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { systemClock, type Clock } from '../core/clock.ts';
import { createS3Store, type S3Store } from '../storage/s3/s3-store.ts';

export const s3Env = process.env.S3_ENDPOINT
  ? {
      endpoint: process.env.S3_ENDPOINT,
      region: process.env.S3_REGION ?? 'us-east-1',
      credentials: { accessKeyId: process.env.S3_ACCESS_KEY ?? '', secretAccessKey: process.env.S3_SECRET_KEY ?? '' },
    }
  : undefined;

/** The S3 test files, named in the one line that says they were skipped. */
const S3_SUITE = [
  'src/storage/s3/s3-store.test.ts',
  'src/engine/lock-mode-dedup.test.ts',
  'src/engine/missing-key-file.test.ts',
  'src/engine/unauthorised-objects.test.ts',
  'src/protection/storage-effects.test.ts',
  'src/vault/vault.test.ts (vault on S3)',
  'test/e2e/forged-clock.test.ts',
  'test/e2e/s3-cli.test.ts',
];

/**
 * Registers `define` when the S3 server is there. Without it the suite is reported by one skipped
 * test, in the store's own test file, naming every file whose S3 tests did not run.
 */
export function whenS3(define: () => void, options: { announceSkip?: boolean } = {}): void {
  if (s3Env) define();
  else if (options.announceSkip) {
    test('S3 suite', {
      skip: `S3_ENDPOINT is not set, so the S3 tests did not run (${S3_SUITE.join(', ')}); \`bash .ci/run\` starts a Ceph RADOS Gateway, or see docs/s3.md#tests`,
    }, () => {});
  }
}

/** A bucket of its own, with Object Lock, for one test: COMPLIANCE objects make buckets undeletable. */
export function freshBucketName(label = 'amber'): string {
  return `${label}-${randomBytes(6).toString('hex')}`;
}

/** `s3:http://127.0.0.1:PORT/BUCKET[/PREFIX]` for the CLI, and the environment it needs. */
export function s3RepoUrl(bucket: string, prefix = ''): string {
  return `s3:${s3Env!.endpoint}/${bucket}${prefix ? `/${prefix}` : ''}`;
}

export function s3CliEnv(): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: s3Env!.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3Env!.credentials.secretAccessKey,
    AWS_REGION: s3Env!.region,
  };
}

export async function freshS3Store(
  options: { prefix?: string; clock?: Clock; create?: boolean; bucket?: string } = {},
): Promise<S3Store> {
  const store = createS3Store(
    { endpoint: s3Env!.endpoint, bucket: options.bucket ?? freshBucketName(), prefix: options.prefix ?? '' },
    {
      clock: options.clock ?? systemClock,
      credentials: s3Env!.credentials,
      region: s3Env!.region,
      maxAttempts: 3,
    },
  );
  if (options.create !== false) await store.createBucket();
  return store;
}
