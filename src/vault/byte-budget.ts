// The bytes of request bodies and responses the vault holds in memory at once. Each upload or read
// reserves its size before any of it is in memory and waits while the budget is spent, so the
// server's memory stays bounded by the budget, not by how many clients send at once. Each owner (a
// token) may hold at most its share of the budget: its further requests wait for its own bytes, in
// a line of their own, so one token that trickles large uploads cannot stall every other token.
export interface ByteBudget {
  /** Waits until `bytes` fit for `owner`, reserves them and returns the release function (call it once). */
  reserve(bytes: number, owner?: string): Promise<() => void>;
  readonly inUse: number;
  /** Bytes `owner` holds now. */
  heldBy(owner: string): number;
}

interface Waiter {
  bytes: number;
  grant: () => void;
}

interface Owner {
  inUse: number;
  waiting: Waiter[];
}

/** `share`: the most one owner may hold at once (default half the limit: one token never fills it). */
export function createByteBudget(limit: number, share = Math.floor(limit / 2)): ByteBudget {
  let inUse = 0;
  const waiting: Waiter[] = [];
  const owners = new Map<string, Owner>();
  const wake = () => {
    // First come, first served: a large request is not starved by a stream of small ones.
    while (waiting.length > 0 && inUse + waiting[0].bytes <= limit) {
      const next = waiting.shift()!;
      inUse += next.bytes;
      next.grant();
    }
  };
  const admit = (bytes: number) => {
    if (waiting.length === 0 && inUse + bytes <= limit) {
      inUse += bytes;
      return Promise.resolve();
    }
    return new Promise<void>((grant) => waiting.push({ bytes, grant }));
  };
  // A request larger than the share still goes, alone: it waits until its owner holds nothing.
  const fits = (owner: Owner, bytes: number) => owner.inUse === 0 || owner.inUse + bytes <= share;
  const wakeOwner = (owner: Owner) => {
    while (owner.waiting.length > 0 && fits(owner, owner.waiting[0].bytes)) {
      const next = owner.waiting.shift()!;
      owner.inUse += next.bytes;
      next.grant();
    }
  };
  return {
    get inUse() {
      return inUse;
    },
    heldBy: (owner) => owners.get(owner)?.inUse ?? 0,
    async reserve(bytes, ownerId) {
      const size = Math.min(bytes, limit);
      let owner: Owner | undefined;
      if (ownerId !== undefined) {
        owner = owners.get(ownerId) ?? { inUse: 0, waiting: [] };
        owners.set(ownerId, owner);
        if (owner.waiting.length === 0 && fits(owner, size)) owner.inUse += size;
        else await new Promise<void>((grant) => owner!.waiting.push({ bytes: size, grant }));
      }
      await admit(size);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        inUse -= size;
        if (owner && ownerId !== undefined) {
          owner.inUse -= size;
          wakeOwner(owner);
          if (owner.inUse === 0 && owner.waiting.length === 0) owners.delete(ownerId);
        }
        wake();
      };
    },
  };
}
