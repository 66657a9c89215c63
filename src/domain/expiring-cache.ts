import type { Clock } from './refresh-token';

/**
 * A small TTL cache for revocation state (user and global minimum versions, session liveness),
 * bounded to `maxEntries` (the oldest go first). A fill whose read began before an invalidation is
 * not stored, so a value read just before a revocation cannot outlive it. `ttlMs = 0` disables it.
 */
export class ExpiringCache<T> {
  private readonly entries = new Map<string, { value: T; expiresAt: number }>();
  private invalidations = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly clock: Clock,
  ) {}

  /** The cached value of `key`, or the value of `load()` (stored unless invalidated meanwhile). */
  async read(key: string, load: () => Promise<T>): Promise<T> {
    if (this.ttlMs === 0) return load();
    const hit = this.entries.get(key);
    if (hit && hit.expiresAt > this.clock.now().getTime()) return hit.value;
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
    this.entries.set(key, { value, expiresAt: this.clock.now().getTime() + this.ttlMs });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }
}
