import type { DPoPReplayCache } from '../../domain/dpop-replay-cache';
import { OptionsError, StoreUnavailableError } from '../../domain/errors';
import { systemClock, type Clock } from '../../domain/refresh-token';

/** Options of {@link MemoryDPoPReplayCache}. */
export interface MemoryDPoPReplayCacheOptions {
  /**
   * Most keys remembered at once. Default 100 000 (a few MB). When every slot holds a key that
   * has not expired, `claim` rejects with `StoreUnavailableError` (answered 503) instead of
   * forgetting a key early: a full cache refuses proofs, it never lets one be replayed.
   */
  maxEntries?: number | undefined;
  /** Source of time. Default the system clock. */
  clock?: Clock | undefined;
}

const DEFAULT_MAX_ENTRIES = 100_000;

/**
 * The DPoP replay cache of one process: for a single instance, tests and the demo. With several
 * instances behind a load balancer, a proof replayed to another instance would pass: use
 * `RedisDPoPReplayCache` (refresh-rotation/redis) there.
 */
export class MemoryDPoPReplayCache implements DPoPReplayCache {
  /** Key → expiry (ms), in claim order: the verifier's TTLs are all equal, so oldest expires first. */
  private readonly expiries = new Map<string, number>();
  private readonly maxEntries: number;
  private readonly clock: Clock;

  constructor(options: MemoryDPoPReplayCacheOptions = {}) {
    const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1)
      throw new OptionsError(`maxEntries must be a positive integer; got ${String(maxEntries)}`);
    this.maxEntries = maxEntries;
    this.clock = options.clock ?? systemClock;
  }

  /** Keys remembered now (expired ones included until the next claim sweeps them). */
  get size(): number {
    return this.expiries.size;
  }

  /** True the first time `key` is claimed within `ttlMs`; false for a replay. */
  async claim(key: string, ttlMs: number): Promise<boolean> {
    const now = this.clock.now().getTime();
    this.sweep(now);
    const expiry = this.expiries.get(key);
    if (expiry !== undefined && expiry > now) return false;
    this.expiries.delete(key);
    if (this.expiries.size >= this.maxEntries)
      throw new StoreUnavailableError('the DPoP replay cache is full; retry later');
    this.expiries.set(key, now + Math.max(1, ttlMs));
    return true;
  }

  /** Drop expired keys from the oldest claim on; stops at the first live one (amortised O(1)). */
  private sweep(now: number): void {
    for (const [key, expiry] of this.expiries) {
      if (expiry > now) return;
      this.expiries.delete(key);
    }
  }
}
