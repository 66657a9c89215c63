import type { Clock } from './refresh-token';

/**
 * A small cache for revocation state (user and global minimum versions, session liveness), bounded
 * to `maxEntries` (the oldest go first). Each read says how old an entry it accepts, so one cache
 * serves a long lifetime while revocations are pushed to it and a short one when they may not be.
 * A fill whose read began before an invalidation is not stored, so a value read just before a
 * revocation cannot outlive it.
 */
export class ExpiringCache<T> {
  private readonly entries = new Map<string, { value: T; storedAt: number }>();
  private invalidations = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly clock: Clock,
  ) {}

  /**
   * The value of `key` if cached less than `maxAgeMs` ago, else the value of `load()` (then cached
   * unless invalidated meanwhile). `maxAgeMs = 0` always loads and caches nothing.
   */
  async read(key: string, load: () => Promise<T>, maxAgeMs: number): Promise<T> {
    if (maxAgeMs <= 0) return load();
    const hit = this.entries.get(key);
    if (hit && this.clock.now().getTime() - hit.storedAt < maxAgeMs) return hit.value;
    const before = this.invalidations;
    const value = await load();
    if (this.invalidations === before) this.store(key, value);
    return value;
  }

  /** Drop `key` and any fill in flight. */
  invalidate(key: string): void {
    this.invalidations += 1;
    this.entries.delete(key);
  }

  /** Drop everything and any fill in flight (after notices may have been missed). */
  clear(): void {
    this.invalidations += 1;
    this.entries.clear();
  }

  private store(key: string, value: T): void {
    this.entries.delete(key);
    this.entries.set(key, { value, storedAt: this.clock.now().getTime() });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }
}
