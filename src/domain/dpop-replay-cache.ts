/**
 * The port that makes a DPoP proof single-use (RFC 9449 §11.1): the verifier claims each proof's
 * key once, and a second claim within the proof's lifetime means a replay. Implemented by
 * `MemoryDPoPReplayCache` (refresh-rotation/memory, one process) and `RedisDPoPReplayCache`
 * (refresh-rotation/redis, every instance sharing one Redis).
 */
export interface DPoPReplayCache {
  /**
   * Record `key` for `ttlMs` milliseconds. Resolves `true` when the key was not recorded (first
   * use), `false` when it was recorded less than `ttlMs` ago by any caller sharing the cache (a
   * replay).
   *
   * - Atomic: of any number of concurrent claims of one key, exactly one resolves `true`, across
   *   every instance that shares the store (Redis: one `SET NX PX`).
   * - A key is remembered at least `ttlMs`; an adapter may forget it afterwards, never before. An
   *   adapter that cannot remember it (full, unreachable) rejects, with `StoreUnavailableError`,
   *   rather than answering `true`: a proof is then refused, never accepted twice.
   * - `key` is chosen by the caller and is short (the verifier passes a base64url SHA-256 of the
   *   proof's key thumbprint and `jti`, so no attacker-chosen text becomes a store key).
   *
   * Leaves out: connections (an adapter uses the caller's client and never opens or closes it) and
   * deletion (a claimed key only expires).
   */
  claim(key: string, ttlMs: number): Promise<boolean>;
}
