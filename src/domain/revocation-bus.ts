/**
 * What one app instance tells the others when revocation state changes, so they drop what they
 * cached at once instead of when the cache expires (docs/architecture.md, "Revocation and
 * versions"). A notice carries ids only, never a token.
 */
export type RevocationNotice =
  /** The user's minimum version was raised (password change, logout everywhere). */
  | { kind: 'user'; userId: string }
  /** The global minimum version was raised (breach rotation). */
  | { kind: 'global' }
  /** One session was revoked (logout, sign out a device, reuse detected, RFC 7009 revocation). */
  | { kind: 'session'; sessionId: string };

/**
 * What a subscriber receives: a notice, or `resync` when notices may have been missed (the bus
 * reconnected), after which everything cached must be dropped.
 */
export type RevocationSignal = RevocationNotice | { kind: 'resync' };

/**
 * Fan-out of revocation notices between app instances (`RedisRevocationBus` over Redis pub/sub,
 * `MemoryRevocationBus` within one process). Delivery is at most once: a subscriber that was
 * disconnected gets `resync` when it is back, and caches keep their short lifetime as the fallback.
 * The bus owns any connection it opens; it never closes one it was given.
 */
export interface RevocationBus {
  /**
   * Send `notice` to every subscriber of every instance. Resolves once the broker has taken it
   * (so an answer sent after it reaches no instance that still trusts the old state); rejects if
   * it cannot be sent.
   */
  publish(notice: RevocationNotice): Promise<void>;

  /** Call `listener` for every signal from now on; returns the function that stops it. */
  subscribe(listener: (signal: RevocationSignal) => void): () => void;

  /**
   * Resolves `true` once every notice published before this call (by any instance) has reached
   * this instance's listeners, so that a cached value read afterwards is not older than an answer
   * the caller may already have seen; pub/sub alone gives no such order (the publisher's reply and
   * the subscriber's message leave the broker separately). Resolves `false`, never rejects, when
   * that cannot be known (the bus is down or stalled): callers then fall back to short cache
   * lifetimes. Optional: a bus without it counts as never synced.
   */
  sync?(): Promise<boolean>;
}
