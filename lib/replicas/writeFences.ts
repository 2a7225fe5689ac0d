/**
 * What a replica must have replayed before it may answer a read a write made stale: the write's
 * WAL position, or (when that could not be read) a point in time after which any replica within
 * DB_READ_MAX_LAG_SECONDS has the write.
 */
export interface Fence {
  lsn: bigint | null;
  /** For a fence without a position: until when it holds (ms since the epoch). */
  until: number;
}

/** Beyond this many fences they fold into one that holds every read until the replica passes the newest. */
const MAX_FENCES = 10_000;

function passed(fence: Fence, replayed: bigint | null, now: number): boolean {
  return fence.lsn === null ? now >= fence.until : replayed !== null && replayed >= fence.lsn;
}

function later(a: Fence | undefined, b: Fence): Fence {
  if (!a) return b;
  if (a.lsn === null || b.lsn === null) return { lsn: a.lsn === null && b.lsn === null ? null : (a.lsn ?? b.lsn), until: Math.max(a.until, b.until) };
  // biome-ignore lint/complexity/useMathMinMax: WAL positions are bigints, which Math.max does not take.
  return { lsn: a.lsn > b.lsn ? a.lsn : b.lsn, until: Math.max(a.until, b.until) };
}

/**
 * The reads this instance's recent writes made stale, as results-cache key prefixes (the write's
 * `x-cache-invalidates`), grouped by operation so a read that no write touched costs one map lookup.
 */
export class WriteFences {
  private readonly byOperation = new Map<string, Map<string, Fence>>();
  /** Set when the fences overflowed: holds every replica read. */
  private everything: Fence | undefined;
  private count = 0;

  get size(): number {
    return this.count + (this.everything ? 1 : 0);
  }

  add(prefixes: readonly string[], fence: Fence): void {
    for (const prefix of prefixes) {
      const operationId = prefix.slice(0, prefix.indexOf('?'));
      let fences = this.byOperation.get(operationId);
      if (!fences) {
        fences = new Map();
        this.byOperation.set(operationId, fences);
      }
      if (!fences.has(prefix)) this.count += 1;
      fences.set(prefix, later(fences.get(prefix), fence));
    }
    if (this.count > MAX_FENCES) this.collapse();
  }

  /** The fence that holds the read with this cache key back from a replica at `replayed`, if any. */
  holding(key: string, replayed: bigint | null, now = Date.now()): Fence | undefined {
    if (this.everything) {
      if (!passed(this.everything, replayed, now)) return this.everything;
      this.everything = undefined;
    }
    if (this.count === 0) return undefined;
    const fences = this.byOperation.get(key.slice(0, key.indexOf('?')));
    if (!fences) return undefined;
    let holding: Fence | undefined;
    for (const [prefix, fence] of fences) {
      if (passed(fence, replayed, now)) {
        fences.delete(prefix);
        this.count -= 1;
      } else if (key.startsWith(prefix)) {
        holding = later(holding, fence);
      }
    }
    return holding;
  }

  passedBy(fence: Fence, replayed: bigint | null, now = Date.now()): boolean {
    return passed(fence, replayed, now);
  }

  /** Drops every fence the replica has passed (the monitor calls this after each check). */
  prune(replayed: bigint | null, now = Date.now()): void {
    if (this.everything && passed(this.everything, replayed, now)) this.everything = undefined;
    for (const [operationId, fences] of this.byOperation) {
      for (const [prefix, fence] of fences) {
        if (passed(fence, replayed, now)) {
          fences.delete(prefix);
          this.count -= 1;
        }
      }
      if (fences.size === 0) this.byOperation.delete(operationId);
    }
  }

  private collapse(): void {
    for (const fences of this.byOperation.values()) for (const fence of fences.values()) this.everything = later(this.everything, fence);
    this.byOperation.clear();
    this.count = 0;
  }
}
