/** The session record and the types around it. Pure: no I/O, no framework. */
import type { DbscBinding, SessionBinding } from './session-binding';

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
  /**
   * The current token's nonce under AES-256-GCM (key derived from the secret `keyId`, bound to
   * session, generation and key id; `token-seal.ts`), base64url: what lets the grace path answer
   * every straggler with the same current token. Useless without the secret.
   */
  sealed: string;
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
  /** The key the session is bound to (DPoP, DBSC), or null for a bearer session. Never replaced. */
  binding: SessionBinding | null;
}

/** The moment a generation stopped being the current one (a rotation moved past it). */
export interface SupersededGeneration {
  generation: number;
  at: Date;
  /**
   * Hex SHA-256 of that generation's token: a straggler is recognised by it, and a token with a
   * valid tag but another hash for this generation was never issued.
   */
  tokenHash: string;
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
  'rotatedAt' | 'superseded' | 'lastUsedAt' | 'revokedAt' | 'revokedReason' | 'binding'
> &
  Partial<Pick<RefreshTokenRecord, 'rotatedAt' | 'superseded' | 'lastUsedAt' | 'binding'>>;

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
  /**
   * SHA-256 of the presented token; the write happens only if it is the stored one, and it is
   * kept in the supersede entry of `generation`.
   */
  tokenHash: string;
  /** Key id of the secret that signed the token for `generation + 1`. */
  nextKeyId: number;
  /** Hash of the token for `generation + 1`. */
  nextTokenHash: string;
  /** The sealed nonce of the token for `generation + 1` (the record's next `sealed`). */
  nextSealed: string;
  /**
   * The thumbprint of the key the request proved (a DPoP proof), if any. The write happens only if
   * the record is unbound or bound to this key by DPoP, and an unbound record is then bound to it;
   * without it, only an unbound record matches.
   */
  proofJkt?: string | undefined;
  /**
   * A refresh by proof at the DBSC endpoint (the adapter verified the proof with the stored key):
   * the write happens only if the record is bound by DBSC to `jkt`, and its bound lifetime then
   * becomes `boundUntil`. Without it a DBSC-bound record matches only while its `boundUntil` is
   * after `now`, and the rotation leaves that lifetime as it is. Never set together with `proofJkt`.
   */
  dbsc?: { jkt: string; boundUntil: Date } | undefined;
  /** The time of the rotation: live and unexpired at `now`; `rotatedAt`, supersede time, last use. */
  now: Date;
  /** `now` + the idle TTL; the stored idle expiry never passes the record's absolute one. */
  idleExpiresAt: Date;
}

/** A DBSC registration (see `RefreshTokenRepository.bindDevice`). */
export interface BindDeviceInput {
  sessionId: string;
  /** SHA-256 of the presented token: the record's current one, or nothing is bound. */
  tokenHash: string;
  binding: DbscBinding;
  now: Date;
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
    .map((entry) => ({
      generation: entry.generation,
      at: new Date(entry.at.getTime()),
      tokenHash: entry.tokenHash,
    }))
    .sort((x, y) => x.generation - y.generation || x.at.getTime() - y.at.getTime());
}

/** What a record says about a presented token with a valid tag (its generation and hash). */
export type Provenance =
  /** The current generation's token. */
  | { kind: 'current' }
  /** A superseded generation's token, superseded at `at`. */
  | { kind: 'superseded'; at: Date }
  /** A generation older than the supersede list (or without an entry): it may have been ours. */
  | { kind: 'forgotten' }
  /**
   * A token the record never stored the hash of, for a generation it knows (current, listed, or
   * ahead of it). Its tag verifies, so it was made with one of our secrets: a secret is out.
   */
  | { kind: 'never_issued' };

/** The token a client presents, as far as the record can judge it. */
export interface PresentedToken {
  generation: number;
  /** Hex SHA-256 of the token string. */
  tokenHash: string;
}

/**
 * Whether the record issued the presented token. Hashes are compared with `===`: they are
 * SHA-256 of tokens, not secrets (the database filters on the same value, and learning a stored
 * hash byte by byte would still leave a preimage to find). The earliest entry wins if a list
 * holds two for one generation with that hash (a record saved with one).
 */
export function provenanceOf(
  record: Pick<RefreshTokenRecord, 'generation' | 'tokenHash' | 'superseded'>,
  presented: PresentedToken,
): Provenance {
  if (presented.generation === record.generation)
    return presented.tokenHash === record.tokenHash
      ? { kind: 'current' }
      : { kind: 'never_issued' };
  // No generation above the current one was ever issued (on an atomic store, not even lost).
  if (presented.generation > record.generation) return { kind: 'never_issued' };
  const listed = record.superseded.filter((entry) => entry.generation === presented.generation);
  if (listed.length === 0) return { kind: 'forgotten' };
  let earliest: Date | null = null;
  for (const entry of listed) {
    if (entry.tokenHash !== presented.tokenHash) continue;
    if (earliest === null || entry.at.getTime() < earliest.getTime()) earliest = entry.at;
  }
  return earliest === null ? { kind: 'never_issued' } : { kind: 'superseded', at: earliest };
}

/** What to do with a token whose tag is valid (docs/architecture.md, "A refresh", step 3). */
export type GenerationDecision = 'advance' | 'grace' | 'reuse' | 'never_issued';

/**
 * - `advance`: the presented token is the current one: rotate (the write raced, retry).
 * - `grace`: a superseded token of this session, its generation superseded at most
 *   `reuseGraceMs` ago, however far behind `cur` (concurrent tabs, a straggler request started
 *   before two other tabs rotated, a retry after a lost response): answer with the current
 *   token, no write. `reuseGraceMs = 0` disables.
 * - `reuse`: a superseded token outside the window, or one of a generation older than the
 *   supersede list (its time and hash are unknown, so it is never forgiven). The token was
 *   copied: the session must die.
 * - `never_issued`: a valid tag on a token this session never had (see {@link provenanceOf}):
 *   refuse, change nothing, raise the compromise alarm. Checked before time, so the window
 *   never turns such a token into the current one.
 */
export function decideGeneration(
  presented: PresentedToken,
  record: Pick<RefreshTokenRecord, 'generation' | 'tokenHash' | 'superseded'>,
  now: Date,
  reuseGraceMs: number,
): GenerationDecision {
  const provenance = provenanceOf(record, presented);
  switch (provenance.kind) {
    case 'current':
      return 'advance';
    case 'never_issued':
      return 'never_issued';
    case 'forgotten':
      return 'reuse';
    case 'superseded': {
      const inWindow = reuseGraceMs > 0 && now.getTime() - provenance.at.getTime() <= reuseGraceMs;
      return inWindow ? 'grace' : 'reuse';
    }
  }
}
