import type { GlobalVersion } from './refresh-token';

/**
 * Per-user and global minimum token versions (breach response). Every read goes to the store and
 * sees every write that completed before it: caching is the service's (`revocationCache`, the one
 * cache of versions, src/revocation-state.ts), so an adapter keeps none.
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
}
