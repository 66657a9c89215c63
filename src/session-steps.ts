/**
 * The steps the use cases share (docs/architecture.md, "A refresh"): the gate a presented refresh
 * token passes before any I/O, the one conditional rotation and what follows it, the version check,
 * and revoking a session. The refresh (rotation-service.ts) and the device-bound use cases
 * (device-sessions.ts) are written in these steps, so each rule lives once.
 */
import type { AccessTokens } from './domain/access-token';
import type { AuditTrail } from './audit-trail';
import {
  InvalidRequestError,
  MalformedTokenError,
  RefreshRotationError,
  StoreUnavailableError,
} from './domain/errors';
import {
  decideGeneration,
  isExpired,
  judgeVersions,
  type RefreshTokenRecord,
  type RotateInput,
} from './domain/refresh-token';
import { assertProvenFor, type ProvenKey } from './domain/session-binding';
import { MAX_GENERATION, type ParsedRefreshToken } from './domain/token-codec';
import type { ResolvedOptions } from './options';
import { tokenResponse, type TokenResponse } from './rotation-values';
import type { RevocationState } from './revocation-state';

/**
 * Conditional rotations per refresh. A second runs only when the record read after a miss says
 * the first should have matched (a concurrent write in between); one retry settles it.
 */
export const MAX_ROTATE_ATTEMPTS = 2;

/** Port failures that are not ours become `StoreUnavailableError`, so callers can answer 503. */
export async function store<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (error instanceof RefreshRotationError) throw error;
    throw new StoreUnavailableError(undefined, { cause: error });
  }
}

/** Thrown when the retries of {@link MAX_ROTATE_ATTEMPTS} ran out. */
export function keptChanging(): StoreUnavailableError {
  return new StoreUnavailableError('the session kept changing under concurrent refreshes; retry');
}

/** What the rotation wrote in one conditional update: the target session at its generation. */
export type RotationTarget = Pick<
  RotateInput,
  'sessionId' | 'generation' | 'tokenHash' | 'proofJkt' | 'dbsc'
>;

/** A refresh's answer and the record it was made from. */
export interface Answered {
  answer: TokenResponse;
  record: RefreshTokenRecord;
}

/** A refresh token as presented: parsed, its hash, and the key a proof of the request proved. */
export interface Presented {
  parsed: ParsedRefreshToken;
  tokenHash: string;
  proven: ProvenKey | undefined;
}

/** The shared steps of one `RotationService`. */
export class SessionSteps {
  constructor(
    readonly options: ResolvedOptions,
    readonly accessTokens: AccessTokens,
    readonly revocations: RevocationState,
    readonly audit: AuditTrail,
  ) {}

  /**
   * The presented refresh token, parsed, if we minted it: `InvalidRequestError` when missing,
   * `InvalidGrantError` (`malformed`, `forged`) otherwise. The secret alone decides this: a token
   * we never minted must not reach the database.
   */
  ourToken(refreshToken: unknown): { token: string; parsed: ParsedRefreshToken } {
    if (typeof refreshToken !== 'string' || refreshToken.length === 0)
      throw new InvalidRequestError('refresh_token is required');
    const parsed = this.parse(refreshToken);
    if (!parsed) throw this.audit.reject('malformed');
    if (!this.options.refreshToken.codec.hasValidTag(parsed))
      throw this.audit.reject('forged', { sessionId: parsed.sessionId });
    return { token: refreshToken, parsed };
  }

  /** The token parsed if it is ours (its tag verifies), else null: nothing thrown, nothing audited. */
  taggedOrNull(token: unknown): ParsedRefreshToken | null {
    const parsed = this.parse(token);
    return parsed && this.options.refreshToken.codec.hasValidTag(parsed) ? parsed : null;
  }

  /**
   * The conditional rotation of `target` at `now`, then the versions, the audit event and the
   * answer; null when it matched nothing. The next token is drawn before the one command, so the
   * write stores its hash and seal: a fresh nonce, never computed from the presented token
   * (docs/decisions.md, format 3).
   */
  async rotateTo(
    target: RotationTarget,
    now: Date,
    synced: Promise<boolean>,
  ): Promise<Answered | null> {
    const { repository, refreshToken: settings } = this.options;
    const next = settings.codec.mint(target.sessionId, target.generation + 1);
    const record = await store(() =>
      repository.rotate({
        ...target,
        nextKeyId: next.keyId,
        nextTokenHash: next.tokenHash,
        nextSealed: next.sealed,
        now,
        idleExpiresAt: new Date(now.getTime() + settings.idleTtlMs),
      }),
    );
    if (!record) return null;
    await this.refuseOutdated(record, now, synced);
    const { userId, sessionId, generation } = record;
    this.audit.emit({ type: 'token.rotated', at: now, userId, sessionId, generation });
    return { answer: this.answer(record, next.token, now), record };
  }

  /**
   * The slow path of a refresh (docs/architecture.md, "A refresh"): why the rotation of the
   * presented token missed, judged on the `record` read after the miss. Throws the refusal (after
   * revoking the session if the token was reused); returns the current token for a straggler
   * inside the grace window (no write), or null when the presented token is the current one and a
   * concurrent write got in between (the caller retries).
   */
  async judgeMiss(
    presented: Presented,
    record: RefreshTokenRecord | null,
    synced: Promise<boolean>,
  ): Promise<Answered | null> {
    const { parsed, tokenHash, proven } = presented;
    if (!record) throw this.audit.reject('unknown_session', { sessionId: parsed.sessionId });
    const who = { userId: record.userId, sessionId: record.sessionId };
    const { clock, refreshToken: settings } = this.options;
    const now = clock.now();
    const { generation } = parsed;
    const decision = decideGeneration(
      { generation, tokenHash },
      record,
      now,
      settings.reuseGraceMs,
    );
    // A valid tag on a token this session never had: only a holder of our secret makes those.
    if (decision === 'never_issued') throw this.audit.compromiseSuspected(parsed, record);
    if (record.revokedAt !== null) throw this.audit.reject('revoked', who);
    if (isExpired(record, now)) throw this.audit.reject('expired', who);
    if (generation >= MAX_GENERATION && generation === record.generation)
      throw this.audit.reject('expired', who); // 4 billion rotations: the end, not a wrap-around.
    // Before the generation: a client retrying the token of a session refused for its versions
    // is not a thief, and the revoke-all job marks the record with the reason it was asked for.
    await this.refuseOutdated(record, now, synced);
    // Reuse beats binding: a copy exists, whoever holds the key.
    if (decision === 'reuse') return this.revokeReused(record, generation, now);
    // A device-bound session past its bound lifetime: only a refresh by proof (the key) revives
    // it; a copied cookie is refused here and changes nothing.
    if (assertProvenFor(record.binding, proven, now) === 'lapsed')
      throw this.audit.reject('expired', who);
    if (decision === 'advance') return null;
    // 'grace': the same current token for every straggler, unsealed from the record, no write. If
    // its secret has since been removed from the list (or the seal does not open), nobody can be
    // given it again, so the session ends here (a 400, never a 500).
    const current = settings.codec.unsealCurrent(record);
    if (current === null) throw this.audit.reject('expired', who);
    return { answer: this.answer(record, current, now), record };
  }

  /** The token response for `record`'s session with its refresh token `token`. */
  answer(record: RefreshTokenRecord, token: string, now: Date): TokenResponse {
    return tokenResponse(this.accessTokens, record, token, now);
  }

  /**
   * Versions (step 4 of "A refresh" in docs/architecture.md), through the revocation cache,
   * checked after the rotation because the record names the user. Refused, not revoked here: a
   * revoke-all job revokes the records with the reason it was given (docs/decisions.md).
   */
  async refuseOutdated(
    record: RefreshTokenRecord,
    now: Date,
    synced: Promise<boolean>,
  ): Promise<void> {
    const bus = await synced;
    const [userMinVersion, global] = await store(() =>
      this.revocations.versions(record.userId, bus),
    );
    if (judgeVersions(record, userMinVersion, global, now) === 'outdated')
      throw this.audit.reject('version', record);
  }

  /** Reuse detected: the session is revoked in this request, and the refresh refused. */
  async revokeReused(record: RefreshTokenRecord, presented: number, now: Date): Promise<never> {
    const { userId, sessionId } = record;
    this.audit.emit({
      type: 'token.reuse_detected',
      at: now,
      userId,
      sessionId,
      presentedGeneration: presented,
      currentGeneration: record.generation,
    });
    await this.revoke(record, 'reuse_detected');
    throw this.audit.reject('reused', { userId, sessionId });
  }

  /** Revoke `record`'s session; whether this call did (false if it already was). */
  async revoke(record: RefreshTokenRecord, reason: string): Promise<boolean> {
    const at = this.options.clock.now();
    const { userId, sessionId } = record;
    const revoked = await store(() =>
      this.options.repository.revokeBySession(sessionId, reason, { at }),
    );
    if (!revoked) {
      this.revocations.forgetSession(sessionId);
      return false;
    }
    await this.revocations.revoked({ kind: 'session', sessionId });
    this.audit.emit({ type: 'session.revoked', at, userId, sessionId, reason });
    return true;
  }

  private parse(token: unknown): ParsedRefreshToken | null {
    try {
      return this.options.refreshToken.codec.parse(token);
    } catch (error) {
      if (error instanceof MalformedTokenError) return null;
      throw error;
    }
  }
}
