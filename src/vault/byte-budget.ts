// The bytes of request bodies and responses the vault holds in memory at once. A request opens a
// lease and grows it as bytes actually arrive (an upload) or are read for sending (a read), a step at
// a time, so the budget counts bytes held, never bytes declared: an upload that trickles holds only
// what it has delivered. Each owner (a token) may hold at most its share of the budget, so one token
// cannot take everything.
//
// No deadlock: requests that already hold bytes are served first, oldest first, so one of them can
// always finish; when every request that holds bytes is waiting for more and nothing can be granted
// (together they hold the budget, or an owner's share), the youngest of them is failed and its bytes
// go to the others. A wait is also bounded in time (`waitMs`): a request that cannot get its next
// step in time fails rather than hangs. Both failures are `STORAGE_TRANSIENT` (503, retry later).
import { AmberError } from '../core/errors.ts';

export interface Lease {
  /** Waits until `bytes` more fit for this lease's owner and the budget, then holds them. Rejects once failed. */
  grow(bytes: number): Promise<void>;
  /** Bytes this lease holds now. */
  readonly held: number;
  /** Gives back every byte (call it when the request ends; further calls change nothing). */
  release(): void;
}

export interface ByteBudget {
  /** A lease holding nothing yet, for one request of `owner`. */
  open(owner?: string): Lease;
  /** Waits until `bytes` fit for `owner`, reserves them and returns the release function (call it once). */
  reserve(bytes: number, owner?: string): Promise<() => void>;
  readonly inUse: number;
  /** Bytes `owner` holds now. */
  heldBy(owner: string): number;
}

export interface ByteBudgetOptions {
  /** The most one owner may hold at once (default half the limit: one token never fills it). */
  share?: number;
  /** The longest a lease waits for a step before it fails with 503 (default: no bound). */
  waitMs?: number;
  /** Seconds a failed request is told to wait before it retries (Retry-After). */
  retryAfterSeconds?: number;
}

interface Owner {
  held: number;
  leases: Set<State>;
}

interface State {
  seq: number;
  held: number;
  owner: Owner | undefined;
  /** Whether it ever held bytes: such requests are served before new ones. */
  started: boolean;
  waiting?: {
    bytes: number;
    grant: () => void;
    fail: (error: AmberError) => void;
    timer?: ReturnType<typeof setTimeout>;
  };
  done: boolean;
}

export function createByteBudget(limit: number, options: ByteBudgetOptions | number = {}): ByteBudget {
  const {
    share = Math.floor(limit / 2),
    waitMs = Infinity,
    retryAfterSeconds = 5,
  } = typeof options === 'number' ? { share: options } : options;
  let inUse = 0;
  let nextSeq = 0;
  const leases = new Set<State>();
  const owners = new Map<string, Owner>();
  const failure = (message: string) =>
    new AmberError('STORAGE_TRANSIENT', message, {
      hint: `the vault is busy with other uploads and reads; retry in ${retryAfterSeconds} s or later`,
      details: { httpStatus: 503, retryAfterSeconds },
    });

  // An owner may go past its share only with a single request that holds bytes (a request larger than
  // the share goes alone); the budget as a whole is never exceeded.
  const fitsOwner = (lease: State, bytes: number) => {
    const owner = lease.owner;
    if (!owner || owner.held + bytes <= share) return true;
    for (const other of owner.leases) if (other !== lease && other.held > 0) return false;
    return true;
  };
  const waiters = () =>
    [...leases]
      .filter((lease) => lease.waiting)
      // Requests already under way first (one of them can always finish), then newcomers; each by age.
      .sort((a, b) => Number(b.started) - Number(a.started) || a.seq - b.seq);

  const take = (lease: State, bytes: number) => {
    lease.held += bytes;
    lease.started = true;
    inUse += bytes;
    if (lease.owner) lease.owner.held += bytes;
  };

  const drop = (lease: State) => {
    inUse -= lease.held;
    if (lease.owner) lease.owner.held -= lease.held;
    lease.held = 0;
    lease.done = true;
    leases.delete(lease);
    lease.owner?.leases.delete(lease);
  };

  const fail = (lease: State, error: AmberError) => {
    const waiting = lease.waiting;
    if (waiting?.timer) clearTimeout(waiting.timer);
    lease.waiting = undefined;
    drop(lease);
    waiting?.fail(error);
  };

  const grantAll = () => {
    for (const lease of waiters()) {
      const waiting = lease.waiting!;
      if (!fitsOwner(lease, waiting.bytes)) continue; // its owner's own line: others go past it
      // First come first served across owners: nothing smaller goes ahead of a step that does not fit.
      if (inUse + waiting.bytes > limit) break;
      if (waiting.timer) clearTimeout(waiting.timer);
      lease.waiting = undefined;
      take(lease, waiting.bytes);
      waiting.grant();
    }
  };

  // When no request that holds bytes can move (all wait, for the budget or for their owner's share),
  // none ever will: the youngest of them fails and its bytes go to the older ones.
  const stuck = (holders: State[]) => holders.length > 0 && holders.every((lease) => lease.waiting);
  const youngest = (holders: State[]) => holders.reduce((a, b) => (b.seq > a.seq ? b : a));
  const settle = () => {
    for (;;) {
      grantAll();
      const waiting = waiters();
      if (waiting.length === 0) return;
      const holders = [...leases].filter((lease) => lease.held > 0);
      if (stuck(holders)) {
        fail(
          youngest(holders),
          failure(
            `the vault's memory budget (${limit} bytes) is held by uploads that all wait for more; this one, the youngest, was stopped so the others can finish`,
          ),
        );
        continue;
      }
      const blocked = waiting.find((lease) => {
        if (!lease.owner || fitsOwner(lease, lease.waiting!.bytes)) return false;
        // Stuck on the owner's share: every request of the owner that holds bytes waits for the share itself.
        const holders = [...lease.owner.leases].filter((other) => other.held > 0);
        return stuck(holders) && holders.every((other) => !fitsOwner(other, other.waiting!.bytes));
      });
      if (!blocked) return;
      fail(
        youngest([...blocked.owner!.leases].filter((other) => other.held > 0)),
        failure(
          `this token's share of the vault's memory budget (${share} bytes) is held by its uploads that all wait for more; this one, the youngest, was stopped so the others can finish`,
        ),
      );
    }
  };

  const open = (ownerId?: string): Lease => {
    let owner: Owner | undefined;
    if (ownerId !== undefined) {
      owner = owners.get(ownerId) ?? { held: 0, leases: new Set() };
      owners.set(ownerId, owner);
    }
    const lease: State = { seq: nextSeq++, held: 0, owner, started: false, done: false };
    leases.add(lease);
    owner?.leases.add(lease);
    const forget = () => {
      if (owner && ownerId !== undefined && owner.leases.size === 0 && owners.get(ownerId) === owner)
        owners.delete(ownerId);
    };
    return {
      get held() {
        return lease.held;
      },
      grow(bytes) {
        if (lease.done) return Promise.reject(failure("the request gave up its share of the vault's memory budget"));
        if (lease.waiting) throw new Error('a lease grows one step at a time');
        const size = Math.max(0, Math.min(bytes, limit - lease.held));
        return new Promise<void>((grant, reject) => {
          lease.waiting = {
            bytes: size,
            grant,
            fail: (error) => {
              forget();
              reject(error);
            },
          };
          if (Number.isFinite(waitMs)) {
            lease.waiting.timer = setTimeout(() => {
              fail(
                lease,
                failure(
                  `the upload or read waited ${Math.round(waitMs / 1000)} s for room in the vault's memory budget (${limit} bytes, ${share} a token) and gave up`,
                ),
              );
              settle();
            }, waitMs);
            lease.waiting.timer.unref?.();
          }
          settle();
        });
      },
      release() {
        if (lease.done) return;
        if (lease.waiting) {
          fail(lease, failure("the request ended while it waited for the vault's memory budget"));
        } else drop(lease);
        forget();
        settle();
      },
    };
  };

  return {
    open,
    get inUse() {
      return inUse;
    },
    heldBy: (owner) => owners.get(owner)?.held ?? 0,
    async reserve(bytes, owner) {
      const lease = open(owner);
      await lease.grow(Math.min(bytes, limit));
      return () => lease.release();
    },
  };
}
