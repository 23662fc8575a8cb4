// The bytes of request bodies and responses the vault holds in memory at once. Each upload or read
// reserves its size before any of it is in memory and waits while the budget is spent, so the
// server's memory stays bounded by the budget, not by how many clients send at once.
export interface ByteBudget {
  /** Waits until `bytes` fit, reserves them and returns the release function (call it once). */
  reserve(bytes: number): Promise<() => void>;
  readonly inUse: number;
}

export function createByteBudget(limit: number): ByteBudget {
  let inUse = 0;
  const waiting: { bytes: number; grant: () => void }[] = [];
  const wake = () => {
    // First come, first served: a large request is not starved by a stream of small ones.
    while (waiting.length > 0 && inUse + waiting[0].bytes <= limit) {
      const next = waiting.shift()!;
      inUse += next.bytes;
      next.grant();
    }
  };
  return {
    get inUse() {
      return inUse;
    },
    async reserve(bytes) {
      const size = Math.min(bytes, limit);
      if (waiting.length === 0 && inUse + size <= limit) inUse += size;
      else await new Promise<void>((grant) => waiting.push({ bytes: size, grant }));
      let released = false;
      return () => {
        if (released) return;
        released = true;
        inUse -= size;
        wake();
      };
    },
  };
}
