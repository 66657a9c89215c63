/** The session record and the types around it. Pure: no I/O, no framework. */

/** What the client told us about itself at login; shown on the sessions page. */
export interface ClientInfo {
  userAgent?: string;
  ip?: string;
  label?: string;
}

/**
 * One login = one session = one record. Rotation advances `generation`; it never inserts a row.
 * Keeps the origin's `RefreshTokenData` meaning: `generation` is the rotation count,
 * `tokenVersion` the version at creation, `globalVersionAtIssuance` the global minimum when issued.
 */
export interface RefreshTokenRecord {
  /** UUIDv7. */
  id: string;
  userId: string;
  /** 16 random bytes as 32 lowercase hex characters; unique. */
  sessionId: string;
  /** Generation of the one valid token (= rotation count, 0 at login). */
  generation: number;
  /** Key id of the secret that signed the current generation. */
  keyId: number;
  /** Hex SHA-256 of the current generation's token; unique. Never the token itself. */
  tokenHash: string;
  /** 32 random bytes, hex; mixed into every MAC of this session. */
  salt: string;
  tokenVersion: number;
  globalVersionAtIssuance: number;
  createdAt: Date;
  /** When the current generation was issued by a rotation; null before the first. */
  rotatedAt: Date | null;
  lastUsedAt: Date | null;
  /** Idle expiry; slides on rotation, never past `absoluteExpiresAt`. */
  expiresAt: Date;
  /** Absolute expiry; never slides. */
  absoluteExpiresAt: Date;
  revokedAt: Date | null;
  revokedReason: string | null;
  client: ClientInfo;
}

/** What `save` takes: a new, live session at generation 0. */
export type NewRefreshTokenRecord = Omit<
  RefreshTokenRecord,
  'rotatedAt' | 'lastUsedAt' | 'revokedAt' | 'revokedReason'
> &
  Partial<Pick<RefreshTokenRecord, 'rotatedAt' | 'lastUsedAt'>>;

/** Reasons kept for audit. Free strings are allowed; these are the ones the library uses. */
export type RevocationReason =
  | 'logout'
  | 'user_requested'
  | 'password_changed'
  | 'admin_action'
  | 'reuse_detected'
  | (string & {});

/** The compare-and-set that rotates a session (see `RefreshTokenRepository.advance`). */
export interface AdvanceInput {
  id: string;
  /** The generation the caller saw; the write happens only if it is still current. */
  fromGeneration: number;
  keyId: number;
  /** Hash of the token for `fromGeneration + 1`. */
  tokenHash: string;
  rotatedAt: Date;
  expiresAt: Date;
  lastUsedAt: Date;
}

/** A last-used report; applied with `$max` semantics (never moves backwards). */
export interface Touch {
  sessionId: string;
  at: Date;
}

/** Per-user and global minimum versions (breach response). */
export interface GlobalVersion {
  /** Tokens issued under an older global version are rejected (except inside the grace window). */
  minVersion: number;
  /** When `minVersion` was last raised; null if never. */
  rotatedAt: Date | null;
  reason: string | null;
  /** How long sessions exactly one version behind may still refresh after `rotatedAt`. */
  gracePeriodMs: number;
}

/** Source of time, injected so tests control it. */
export interface Clock {
  now(): Date;
}

/** The real clock. */
export const systemClock: Clock = { now: () => new Date() };
