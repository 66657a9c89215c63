import type { GlobalVersion } from './refresh-token';

/** Which cached versions to drop (see {@link VersionStore.forgetCached}). */
export type VersionCacheScope =
  { kind: 'user'; userId: string } | { kind: 'global' } | { kind: 'all' };

/**
 * Per-user and global minimum token versions (breach response). Reads may be served from a short,
 * bounded cache; writes take effect for the writer's process at once.
 */
export interface VersionStore {
  /** The user's minimum token version; 0 for a user never bumped. */
  getUserMinVersion(userId: string): Promise<number>;

  /** Raise the user's minimum by one (atomically) and return the new value. */
  bumpUserMinVersion(userId: string): Promise<number>;

  /** The global minimum version; `{ minVersion: 0, rotatedAt: null, reason: null, gracePeriodMs: 0 }` if never rotated. */
  getGlobal(): Promise<GlobalVersion>;

  /** Raise the global minimum by one (atomically), recording when, why and the grace period. */
  bumpGlobal(input: { reason: string; gracePeriodMs: number; at: Date }): Promise<GlobalVersion>;

  /**
   * Drop cached values, including reads in flight, so the next read goes to the store. Called when
   * another instance announces a bump (`RevocationBus`). Optional: a store without a cache has
   * nothing to drop.
   */
  forgetCached?(scope: VersionCacheScope): void;
}
