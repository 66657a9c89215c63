import type {
  BindDeviceInput,
  NewRefreshTokenRecord,
  RefreshTokenRecord,
  RevocationReason,
  RotateInput,
  Touch,
} from './refresh-token';

/**
 * The storage port. Adapters own their connections; no driver type crosses this interface.
 *
 * Failures: every method rejects with `StoreUnavailableError` when the store cannot be reached
 * (within the adapter's configured timeout, never hanging), `ConflictError` on a duplicate unique
 * key, `NotFoundError` where a method says so. Records returned are copies: mutating one never
 * changes the store.
 *
 * "Live" below means `revokedAt === null`; expiry is the caller's concern unless a method says
 * otherwise.
 */
export interface RefreshTokenRepository {
  /** Create a session record (login). Rejects with `ConflictError` on a duplicate id, session id or token hash. */
  save(input: NewRefreshTokenRecord): Promise<RefreshTokenRecord>;

  /** The live record whose current `tokenHash` is `hash`, or null. Expiry is not checked. O(1) (unique index). */
  findByTokenHash(hash: string): Promise<RefreshTokenRecord | null>;

  /** The record with this id (its UUIDv7), revoked or not, or null. O(1) (unique index). */
  findById(id: string): Promise<RefreshTokenRecord | null>;

  /** The record of this session, revoked or not, or null. O(1): the session id is the record's key. */
  findBySessionId(sessionId: string): Promise<RefreshTokenRecord | null>;

  /** Set `lastUsedAt` to `at` (default: now). Rejects with `NotFoundError` for an unknown id. */
  updateLastUsed(id: string, at?: Date): Promise<void>;

  /** Delete the record. Rejects with `NotFoundError` for an unknown id. */
  delete(id: string): Promise<void>;

  /**
   * Revoke the session if it is live (sets `revokedAt`, `revokedReason`); returns whether this call
   * revoked it. Idempotent. A revocation is never lost to a concurrent `rotate` of the same
   * session, on any backend: once this resolves, the record is revoked.
   */
  revokeBySession(
    sessionId: string,
    reason: RevocationReason,
    options?: { at?: Date | undefined },
  ): Promise<boolean>;

  /**
   * Revoke every live record of the user; returns how many this call revoked. With `issuedBefore`,
   * only records created strictly before it (so a late job never revokes a newer login).
   * Idempotent; never lost to a concurrent `rotate`.
   */
  revokeAllForUser(
    userId: string,
    reason?: RevocationReason,
    options?: { issuedBefore?: Date | undefined; at?: Date | undefined },
  ): Promise<number>;

  /**
   * The origin's lookup for non-deterministic hashes: scans live records and returns the first
   * whose `tokenHash` satisfies `verify(token, tokenHash)`. O(n): kept for compatibility, never
   * used on the refresh path.
   */
  findByTokenVerification(
    token: string,
    verify: (token: string, tokenHash: string) => boolean | Promise<boolean>,
  ): Promise<RefreshTokenRecord | null>;

  /**
   * The hot path of a refresh, one conditional find-and-modify on the session's key: if the
   * record `sessionId` is at `generation` with `tokenHash`, not revoked, and neither idle- nor
   * absolute-expired at `now`, then atomically set generation to `generation + 1`, `keyId`,
   * `tokenHash` and `sealed` to the next ones, `rotatedAt` to `now`, record `now` and `tokenHash`
   * as the supersede entry of `generation` (the list keeps the last `SUPERSEDED_KEPT`),
   * `expiresAt` to the earlier of `idleExpiresAt` and the record's absolute expiry, and
   * `lastUsedAt` to `now` unless it is later; return the record after the change. Otherwise change nothing and return null: the
   * caller reads the record to find out why.
   *
   * On a backend without atomic find-and-modify, two callers may both "win", and each wrote the
   * next token it drew (tokens are random): the adapter must keep rotations of one session from
   * racing where it can (the Mongoose adapter serialises them per process on FerretDB v1). A
   * concurrent revocation is never undone by a rotation: see `revokeBySession`.
   */
  rotate(input: RotateInput): Promise<RefreshTokenRecord | null>;

  /**
   * DBSC registration, one conditional update: if the record `sessionId` holds `tokenHash`, is
   * unbound, not revoked and neither idle- nor absolute-expired at `now`, set its `binding` to
   * `binding` and return the record after the change; otherwise change nothing and return null. A
   * binding is never replaced, so a replayed registration finds nothing to bind.
   */
  bindDevice(input: BindDeviceInput): Promise<RefreshTokenRecord | null>;

  /** Live records of the user whose idle and absolute expiry are after `now`, newest first. */
  listActiveForUser(userId: string, now: Date): Promise<RefreshTokenRecord[]>;

  /**
   * Batched last-used: for each touch, `lastUsedAt = max(lastUsedAt, at)`. Unknown sessions are
   * ignored. Returns how many records changed.
   */
  touchMany(touches: readonly Touch[]): Promise<number>;

  /**
   * Delete at most `limit` records that expired (idle or absolute) or were revoked before
   * `before`; returns how many were deleted. Live, unexpired records are never touched.
   */
  deleteExpired(options: { before: Date; limit: number }): Promise<number>;
}
