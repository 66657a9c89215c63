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

/* ----- Pure rules (DESIGN §3 steps 4–6). No I/O; `now` is always passed in. ----- */

/** Expired when idle or absolute expiry is reached: `now >= expiresAt` or `now >= absoluteExpiresAt`. */
export function isExpired(
  record: Pick<RefreshTokenRecord, 'expiresAt' | 'absoluteExpiresAt'>,
  now: Date,
): boolean {
  const at = now.getTime();
  return at >= record.expiresAt.getTime() || at >= record.absoluteExpiresAt.getTime();
}

/** The idle expiry after a use at `now`: `now + idleTtlMs`, never past the absolute expiry. */
export function slideExpiry(now: Date, idleTtlMs: number, absoluteExpiresAt: Date): Date {
  return new Date(Math.min(now.getTime() + idleTtlMs, absoluteExpiresAt.getTime()));
}

/**
 * Whether a session's versions are still accepted (DESIGN §3 step 5):
 * - `current`: at or above both minimums;
 * - `global_grace`: exactly one global version behind, inside the global grace window
 *   (`now < rotatedAt + gracePeriodMs`); the session keeps its old version and dies when the window ends;
 * - `outdated`: below the user's minimum, or behind the global minimum otherwise.
 */
export type VersionVerdict = 'current' | 'global_grace' | 'outdated';

export function judgeVersions(
  record: Pick<RefreshTokenRecord, 'tokenVersion' | 'globalVersionAtIssuance'>,
  userMinVersion: number,
  global: GlobalVersion,
  now: Date,
): VersionVerdict {
  if (record.tokenVersion < userMinVersion) return 'outdated';
  if (record.globalVersionAtIssuance >= global.minVersion) return 'current';
  const oneBehind = record.globalVersionAtIssuance === global.minVersion - 1;
  const inWindow =
    global.rotatedAt !== null && now.getTime() < global.rotatedAt.getTime() + global.gracePeriodMs;
  return oneBehind && inWindow ? 'global_grace' : 'outdated';
}

/** What to do with a presented generation whose MAC is valid (DESIGN §3 step 6). */
export type GenerationDecision = 'advance' | 'grace' | 'reuse';

/**
 * - `advance`: the presented generation is the current one: rotate.
 * - `grace`: it is the one just before, rotated at most `reuseGraceMs` ago (a concurrent tab or a
 *   retry after a lost response): answer with the current token, no write. `reuseGraceMs = 0` disables.
 * - `reuse`: anything else. A valid MAC on a rotated generation means the token was copied:
 *   the session must die.
 */
export function decideGeneration(
  presented: number,
  record: Pick<RefreshTokenRecord, 'generation' | 'rotatedAt'>,
  now: Date,
  reuseGraceMs: number,
): GenerationDecision {
  if (presented === record.generation) return 'advance';
  const justRotated =
    presented === record.generation - 1 &&
    reuseGraceMs > 0 &&
    record.rotatedAt !== null &&
    now.getTime() - record.rotatedAt.getTime() <= reuseGraceMs;
  return justRotated ? 'grace' : 'reuse';
}
