// What `init` and `policy show` say about an S3 bucket's own Object Lock settings.
import { AmberError, isAmberError } from '../core/errors.ts';
import { formatDurationMs } from '../core/units.ts';
import type { Store } from '../storage/store.ts';
// Types only: the AWS SDK behind the S3 store is loaded when an s3: location is opened, not before.
import type { BucketLockState, S3Store } from '../storage/s3/s3-store.ts';

const bucketDefaultMs = (state: BucketLockState): number => (state.defaultRetention?.days ?? 0) * 86_400_000;

export const isS3Store = (store: Store): store is S3Store => 'bucketLockState' in store;

/** Creates the bucket when asked, then refuses one that cannot lock objects: Amber claims no immutability it lacks. */
export async function prepareBucket(store: S3Store, create: boolean): Promise<BucketLockState> {
  if (create) {
    await store.createBucket().catch((error: unknown) => {
      // An existing bucket of ours is checked like any other; one of someone else's is refused by S3 with 409.
      if (!isAmberError(error, 'STORAGE_UNSUITABLE') || !/BucketAlreadyOwnedByYou/.test(error.message)) throw error;
    });
  }
  const state = await store.bucketLockState();
  if (!state.objectLock || !state.versioning) {
    throw new AmberError(
      'STORAGE_UNSUITABLE',
      `bucket ${store.bucket} has ${state.versioning ? 'versioning but no Object Lock' : 'neither versioning nor Object Lock'}; Amber will not claim immutability there`,
      {
        hint: 'create a new bucket with Object Lock (`amber init --create-bucket` does), since most S3 servers cannot turn it on for an existing bucket',
      },
    );
  }
  return state;
}

export interface BucketNote {
  bucket: string;
  objectLock: boolean;
  defaultRetention: BucketLockState['defaultRetention'] | null;
  /** The longer of the policy's minimum and the bucket's default retention. */
  effectiveMinRetentionMs: number | null;
}

export async function bucketNote(
  store: S3Store,
  policyMinMs: number | null,
  known?: BucketLockState,
): Promise<BucketNote> {
  const state = known ?? (await store.bucketLockState());
  const bucketMs = bucketDefaultMs(state);
  const effective = Math.max(policyMinMs ?? 0, bucketMs);
  return {
    bucket: store.bucket,
    objectLock: state.objectLock,
    defaultRetention: state.defaultRetention ?? null,
    effectiveMinRetentionMs: effective > 0 ? effective : null,
  };
}

export function describeBucketNote(note: BucketNote, policyMinMs: number | null): string {
  const lines = [
    `bucket ${note.bucket}: Object Lock ${note.objectLock ? 'enabled' : 'NOT enabled: nothing here is immutable'}` +
      (note.defaultRetention
        ? `, default retention ${note.defaultRetention.days}d (${note.defaultRetention.mode})`
        : ', no default retention'),
  ];
  if (note.effectiveMinRetentionMs !== null && note.effectiveMinRetentionMs > (policyMinMs ?? 0)) {
    lines.push(
      `the bucket's default retention raises the effective minimum to ${formatDurationMs(note.effectiveMinRetentionMs)}: ` +
        'Amber sends explicit dates, so set the policy minimum to match (`amber policy set --min-retention`)',
    );
  }
  return lines.join('\n');
}
