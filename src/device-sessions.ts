/**
 * The device-bound use cases (Device Bound Session Credentials, docs/express.md "Device-bound
 * sessions"): bind a session to the browser's key at registration, and refresh it by a proof of
 * that key. The proofs themselves are the HTTP adapter's to verify; here are the session rules,
 * in the steps every refresh shares (session-steps.ts).
 */
import { isExpired } from './domain/refresh-token';
import {
  boundUntilFrom,
  checkedProvenKey,
  credentialExpiry,
  type DeviceKey,
} from './domain/session-binding';
import { hashToken, isSessionId, MAX_GENERATION } from './domain/token-codec';
import { secondsUntil, type TokenResponse } from './rotation-values';
import { keptChanging, MAX_ROTATE_ATTEMPTS, store, type SessionSteps } from './session-steps';

/** What a DBSC registration answers: the session, and its refresh cookie's new lifetime. */
export type DeviceBound = Pick<
  TokenResponse,
  'sessionId' | 'refreshExpiresAt' | 'refreshExpiresIn'
>;

/** The DBSC use cases of one `RotationService` (which exposes them as its own methods). */
export class DeviceSessions {
  constructor(private readonly steps: SessionSteps) {}

  /** See `RotationService.bindDevice`. */
  async bind(
    refreshToken: unknown,
    prove: (sessionId: string) => Promise<DeviceKey>,
    boundTtlMs: number,
  ): Promise<DeviceBound> {
    const { options, audit } = this.steps;
    const { token, parsed } = this.steps.ourToken(refreshToken);
    const key = await prove(parsed.sessionId);
    checkedProvenKey({ jkt: key.jkt });
    const now = options.clock.now();
    const bound = await store(() =>
      options.repository.bindDevice({
        sessionId: parsed.sessionId,
        tokenHash: hashToken(token),
        binding: {
          method: 'dbsc',
          jkt: key.jkt,
          jwk: key.jwk,
          boundUntil: boundUntilFrom(now, boundTtlMs),
        },
        now,
      }),
    );
    // Not the current token of a live, unbound session: revoked, expired, already bound (a
    // replayed registration), or a superseded token.
    if (!bound) throw audit.reject('revoked', { sessionId: parsed.sessionId });
    const refreshExpiresAt = credentialExpiry(bound.expiresAt, bound.binding);
    return {
      sessionId: bound.sessionId,
      refreshExpiresAt,
      refreshExpiresIn: secondsUntil(refreshExpiresAt, now),
    };
  }

  /** See `RotationService.refreshByDeviceProof`. */
  async refresh(
    sessionId: string,
    prove: (key: DeviceKey, generation: number) => Promise<void>,
    boundTtlMs: number,
  ): Promise<TokenResponse> {
    const { options, audit, revocations } = this.steps;
    if (!isSessionId(sessionId)) throw audit.reject('malformed');
    const synced = revocations.sync();
    for (let attempt = 1; attempt <= MAX_ROTATE_ATTEMPTS; attempt += 1) {
      const record = await store(() => options.repository.findBySessionId(sessionId));
      if (!record) throw audit.reject('unknown_session', { sessionId });
      const who = { userId: record.userId, sessionId };
      const now = options.clock.now();
      if (record.revokedAt !== null) throw audit.reject('revoked', who);
      if (isExpired(record, now) || record.generation >= MAX_GENERATION)
        throw audit.reject('expired', who);
      if (record.binding?.method !== 'dbsc') throw audit.reject('unknown_session', who);
      await this.steps.refuseOutdated(record, now, synced);
      const { jkt, jwk } = record.binding;
      await prove({ jkt, jwk }, record.generation);
      const rotated = await this.steps.rotateTo(
        {
          sessionId,
          generation: record.generation,
          tokenHash: record.tokenHash,
          dbsc: { jkt, boundUntil: boundUntilFrom(now, boundTtlMs) },
        },
        now,
        synced,
      );
      if (rotated) return rotated.answer;
      // A write in between: read again (the proof is checked again).
    }
    throw keptChanging();
  }
}
