/** The session record and the types around it. Pure: no I/O, no framework. */

/** What the client told us about itself at login; shown on the sessions page. */
export interface ClientInfo {
  userAgent?: string | undefined;
  ip?: string | undefined;
  label?: string | undefined;
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
  /**
   * When each of the last few generations was superseded, oldest first: generations
   * `generation - SUPERSEDED_KEPT` to `generation - 1` at most (the reuse-grace rule,
   * {@link decideGeneration}).
   */
  superseded: SupersededGeneration[];
  lastUsedAt: Date | null;
  /** Idle expiry; slides on rotation, never past `absoluteExpiresAt` (adapters clamp on read). */
  expiresAt: Date;
  /** Absolute expiry; never slides. */
  absoluteExpiresAt: Date;
  revokedAt: Date | null;
  revokedReason: string | null;
  client: ClientInfo;
}

/** The moment a generation stopped being the current one (a rotation moved past it). */
export interface SupersededGeneration {
  generation: number;
  at: Date;
}

/**
 * How many supersede times a record keeps. A straggler more generations behind than this is
 * reuse even inside the grace window (docs/decisions.md: why 16 is enough, and why the other
 * choice would forgive an old stolen token).
 */
export const SUPERSEDED_KEPT = 16;

/** What `save` takes: a new, live session at generation 0. */
export type NewRefreshTokenRecord = Omit<
  RefreshTokenRecord,
  'rotatedAt' | 'superseded' | 'lastUsedAt' | 'revokedAt' | 'revokedReason'
> &
  Partial<Pick<RefreshTokenRecord, 'rotatedAt' | 'superseded' | 'lastUsedAt'>>;

/** Reasons kept for audit. Free strings are allowed; these are the ones the library uses. */
export type RevocationReason =
  | 'logout'
  | 'user_requested'
  | 'password_changed'
  | 'admin_action'
  | 'reuse_detected'
  | (string & {});

/**
 * The conditional rotation of the hot path (see `RefreshTokenRepository.rotate`): everything it
 * needs is known from the presented token, before the record is read.
 */
export interface RotateInput {
  sessionId: string;
  /** The presented generation; the write happens only if it is still the current one. */
  generation: number;
  /** SHA-256 of the presented token; the write happens only if it is the stored one. */
  tokenHash: string;
  /** Key id of the secret that signed the token for `generation + 1`. */
  nextKeyId: number;
  /** Hash of the token for `generation + 1`. */
  nextTokenHash: string;
  /** The time of the rotation: live and unexpired at `now`; `rotatedAt`, supersede time, last use. */
  now: Date;
  /** `now` + the idle TTL; the stored idle expiry never passes the record's absolute one. */
  idleExpiresAt: Date;
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

/* ----- Pure rules (docs/architecture.md, "A refresh"). No I/O; `now` is passed in. ----- */

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
 * Whether a session's versions are still accepted (step 4 of "A refresh" in docs/architecture.md):
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

/**
 * Where generation `generation`'s supersede time is kept: a ring of {@link SUPERSEDED_KEPT}
 * slots, so a rotation writes one slot (`superseded.<slot>`) without reading the list, and the
 * slot it overwrites holds the generation that fell out of the window. One `$set` that FerretDB
 * v1 applies too (it accepts `$push` with `$slice` but ignores the slice).
 */
export function supersededSlot(generation: number): number {
  return generation % SUPERSEDED_KEPT;
}

/**
 * The record's supersede list as the port returns it, from the stored ring: the entries of the
 * last {@link SUPERSEDED_KEPT} generations before `generation`, oldest first (empty or foreign
 * slots dropped).
 */
export function supersededWindow(
  generation: number,
  stored: ReadonlyArray<SupersededGeneration | null | undefined>,
): SupersededGeneration[] {
  return stored
    .filter(
      (entry): entry is SupersededGeneration =>
        entry != null &&
        entry.generation < generation &&
        entry.generation >= generation - SUPERSEDED_KEPT,
    )
    .map((entry) => ({ generation: entry.generation, at: new Date(entry.at.getTime()) }))
    .sort((x, y) => x.generation - y.generation || x.at.getTime() - y.at.getTime());
}

/**
 * When `generation` was superseded, or null when the record no longer knows (older than its
 * list, or never rotated). The earliest entry wins if a list holds two (a record saved with
 * one).
 */
export function supersededAt(
  record: Pick<RefreshTokenRecord, 'generation' | 'rotatedAt' | 'superseded'>,
  generation: number,
): Date | null {
  let earliest: Date | null = null;
  for (const entry of record.superseded) {
    if (entry.generation !== generation) continue;
    if (earliest === null || entry.at.getTime() < earliest.getTime()) earliest = entry.at;
  }
  // Records written before the list existed still know when `cur - 1` was superseded.
  if (earliest === null && generation === record.generation - 1) return record.rotatedAt;
  return earliest;
}

/** What to do with a generation whose anchor is valid (docs/architecture.md, "A refresh", step 3). */
export type GenerationDecision = 'advance' | 'grace' | 'reuse';

/**
 * - `advance`: the presented generation is the current one: rotate.
 * - `grace`: an older generation superseded at most `reuseGraceMs` ago, however far behind `cur`
 *   (concurrent tabs, a straggler request started before two other tabs rotated, a retry after a
 *   lost response): answer with the current token, no write. `reuseGraceMs = 0` disables.
 * - `reuse`: anything else, including a generation older than the record's supersede list (its
 *   time is unknown, so it is never forgiven). A valid MAC on a rotated generation outside the
 *   window means the token was copied: the session must die.
 */
export function decideGeneration(
  presented: number,
  record: Pick<RefreshTokenRecord, 'generation' | 'rotatedAt' | 'superseded'>,
  now: Date,
  reuseGraceMs: number,
): GenerationDecision {
  if (presented === record.generation) return 'advance';
  if (presented > record.generation || reuseGraceMs <= 0) return 'reuse';
  const at = supersededAt(record, presented);
  const inWindow = at !== null && now.getTime() - at.getTime() <= reuseGraceMs;
  return inWindow ? 'grace' : 'reuse';
}
