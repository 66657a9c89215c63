/**
 * The use cases (docs/architecture.md, "A refresh" and "A revoke-all"): log in, refresh with
 * rotation and reuse detection, revoke, breach rotation, list sessions, access tokens, and the
 * device-bound sessions' two (device-sessions.ts). The steps they share (the token gate, the one
 * conditional rotation, the slow path's judgement, revoking) are in session-steps.ts.
 * Framework-free: storage, versions and jobs come in through the ports.
 */
import { randomBytes } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
// The two imports outside the domain (eslint.config.mjs lists them): the default (and only)
// `AccessTokens`, because the public constructor takes key material, not a signer; and spans
// through @opentelemetry/api, on by default (`tracing`), which that adapter loads lazily.
import { JwtAccessTokens } from './adapters/jsonwebtoken/jwt-access-tokens';
import { openTelemetryTracing } from './adapters/opentelemetry/otel-tracing';
import type { AccessTokenClaims } from './domain/access-token';
import { AuditTrail } from './audit-trail';
import { DeviceSessions, type DeviceBound } from './device-sessions';
import { parseDuration } from './domain/duration';
import { NO_TRACING, type OperationTracer } from './domain/tracing';
import {
  judgeVersions,
  provenanceOf,
  slideExpiry,
  type GlobalVersion,
  type RefreshTokenRecord,
} from './domain/refresh-token';
import {
  assertProvenFor,
  bindingAfter,
  checkedProvenKey,
  type ProvenKey,
  type DeviceKey,
} from './domain/session-binding';
import {
  hashToken,
  isSessionId,
  MAX_GENERATION,
  SESSION_RANDOM_BYTES,
  TOKEN_FORMAT,
  type ParsedRefreshToken,
} from './domain/token-codec';
import { resolveOptions, type RefreshRotationOptions, type ResolvedOptions } from './options';
import {
  clientInfo,
  nonEmpty,
  sessionView,
  snapshotOf,
  type IssueOptions,
  type RefreshContext,
  type SessionView,
  type TokenResponse,
  type VersionSnapshot,
} from './rotation-values';
import { RevocationState } from './revocation-state';
import {
  keptChanging,
  MAX_ROTATE_ATTEMPTS,
  SessionSteps,
  store,
  type Answered,
} from './session-steps';

export type { AccessTokenClaims } from './domain/access-token';
export type { DeviceBound } from './device-sessions';
export type {
  IssueOptions,
  RefreshContext,
  SessionView,
  TokenResponse,
  VersionSnapshot,
} from './rotation-values';

/**
 * Refresh-token rotation. Construct once (options are validated and frozen; `OptionsError` on
 * anything invalid) and share.
 */
export class RotationService {
  private readonly options: ResolvedOptions;
  private readonly revocations: RevocationState;
  private readonly audit: AuditTrail;
  private readonly tracer: OperationTracer;
  private readonly steps: SessionSteps;
  private readonly devices: DeviceSessions;
  private dropped = 0;

  constructor(options: RefreshRotationOptions) {
    this.options = resolveOptions(options);
    this.revocations = new RevocationState(this.options);
    this.audit = new AuditTrail(this.options.onAuditEvent, this.options.clock);
    this.tracer = this.options.tracing ? openTelemetryTracing() : NO_TRACING;
    const accessTokens = new JwtAccessTokens(this.options.accessToken);
    this.steps = new SessionSteps(this.options, accessTokens, this.revocations, this.audit);
    this.devices = new DeviceSessions(this.steps);
  }

  /** How many `touch` calls were dropped because the job port rejected them. */
  get droppedTouches(): number {
    return this.dropped;
  }

  /**
   * How many revocation notices could not be published on the `revocationBus` (other instances
   * then saw those revocations only when their caches expired).
   */
  get unpublishedNotices(): number {
    return this.revocations.unpublishedNotices;
  }

  /**
   * The user's minimum version now, for `issue({ at })`. Take it **before** reading the user's
   * password hash: a password change stores the new hash and then bumps the version, so a login
   * that read the old hash read it before the bump, and a snapshot taken earlier still is below the
   * new minimum. Throws `InvalidRequestError` for an empty `userId`, `StoreUnavailableError` if the
   * store fails.
   *
   * @example
   * const snapshot = await service.versionSnapshot(user.id);
   * const { passwordHash } = await users.findById(user.id); // read after the snapshot
   * if (!(await bcrypt.compare(password, passwordHash))) return refuse();
   * const tokens = await service.issue({ userId: user.id, at: snapshot });
   */
  async versionSnapshot(userId: string): Promise<VersionSnapshot> {
    nonEmpty(userId, 'userId');
    const userMinVersion = await store(() => this.options.versions.getUserMinVersion(userId));
    return Object.freeze({ userId, userMinVersion });
  }

  /**
   * Log in: a new session, generation 0, at the user's version of `at` (a {@link VersionSnapshot}
   * taken before the credential check) or, without it, the version current now; always at the
   * current global version.
   * Throws `InvalidRequestError` for an empty `userId` or an `at` of another user,
   * `InvalidGrantError` (reason `version`) when a revoke-all happened since `at` was taken (the
   * password that was checked may be the one it replaced: answer as for a wrong password), and
   * `StoreUnavailableError` if the store fails.
   */
  async issue(input: IssueOptions): Promise<TokenResponse> {
    return this.tracer.run('issue', async (span) => {
      const userId = nonEmpty(input?.userId, 'userId');
      const snapshot = input.at === undefined ? undefined : snapshotOf(input.at, userId);
      const { repository, versions, clock, refreshToken } = this.options;
      const [currentMinVersion, global] = await store(() =>
        Promise.all([versions.getUserMinVersion(userId), versions.getGlobal()]),
      );
      // A session born below the minimum would be refused at its first refresh; its access token
      // would still pass routes without a revocation check until it expires. Issue nothing.
      if (snapshot !== undefined && snapshot.userMinVersion < currentMinVersion)
        throw this.audit.reject('version', { userId });
      const userMinVersion = snapshot?.userMinVersion ?? currentMinVersion;
      const now = clock.now();
      const sessionId = randomBytes(SESSION_RANDOM_BYTES.sessionId).toString('hex');
      const minted = refreshToken.codec.mint(sessionId, 0);
      const absoluteExpiresAt = new Date(now.getTime() + refreshToken.absoluteTtlMs);
      const record = await store(() =>
        repository.save({
          id: uuidv7(),
          userId,
          sessionId,
          generation: 0,
          keyId: minted.keyId,
          tokenHash: minted.tokenHash,
          sealed: minted.sealed,
          tokenVersion: userMinVersion,
          globalVersionAtIssuance: global.minVersion,
          createdAt: now,
          expiresAt: slideExpiry(now, refreshToken.idleTtlMs, absoluteExpiresAt),
          absoluteExpiresAt,
          client: clientInfo(input.client),
          binding: bindingAfter(null, checkedProvenKey(input.dpop)),
        }),
      );
      this.audit.emit({ type: 'token.issued', at: now, userId, sessionId });
      span.set({ 'refresh_rotation.binding': bindingOf(record) });
      return this.steps.answer(record, minted.token, now);
    });
  }

  /**
   * Rotate (the steps of "A refresh" in docs/architecture.md, in that order). Throws
   * `InvalidRequestError` when `refreshToken` is missing or not a string, `InvalidGrantError` (with
   * an internal `reason`) when it is refused, and `StoreUnavailableError` when the store fails. A
   * refused token changes nothing, except a reused one (its session is revoked in this request) and
   * the current token of a session whose versions are outdated: the rotation has happened when the
   * versions are read (the record names the user), so the session moved one generation whose token
   * nobody is given.
   *
   * `proven` is the key a DPoP proof of this request proved (verified by the HTTP adapter): it binds
   * an unbound session, and a bound session refreshes only with a proof by its own key
   * (`InvalidDpopProofError` otherwise, nothing changed, the session not revoked). A superseded
   * token outside the grace window still revokes the session, proof or not: reuse beats binding.
   *
   * Cost: a token we did not mint (its tag fails) costs no I/O; the current token costs one
   * conditional find-and-modify (versions come from the revocation cache; a binding is in its
   * filter); anything else costs that miss, one read of the record, and a revocation if the
   * token was reused.
   */
  async refresh(
    refreshToken: unknown,
    proven?: ProvenKey,
    context: RefreshContext = {},
  ): Promise<TokenResponse> {
    return this.tracer.run('refresh', async (span) => {
      span.set({ 'refresh_rotation.token_format': TOKEN_FORMAT });
      if (context.transport === 'cookie' || context.transport === 'body')
        span.set({ 'refresh_rotation.transport': context.transport });
      const { answer, record } = await this.audit.timeRefresh(
        () => this.refreshOnce(refreshToken, proven),
        (outcome) => span.set({ 'refresh_rotation.outcome': outcome }),
      );
      span.set({ 'refresh_rotation.binding': bindingOf(record) });
      return answer;
    });
  }

  private async refreshOnce(
    refreshToken: unknown,
    proven: ProvenKey | undefined,
  ): Promise<[Answered, 'rotated' | 'grace']> {
    const { token, parsed } = this.steps.ourToken(refreshToken);
    const presentedHash = hashToken(token);
    checkedProvenKey(proven);

    // Started with the first command and awaited before the versions are read: every revocation
    // announced before this request has then reached this instance's caches.
    const synced = this.revocations.sync();

    for (let attempt = 1; attempt <= MAX_ROTATE_ATTEMPTS; attempt += 1) {
      const rotated = await this.rotate(parsed, presentedHash, proven, synced);
      if (rotated) return [rotated, 'rotated'];
      const record = await store(() => this.options.repository.findBySessionId(parsed.sessionId));
      const presented = { parsed, tokenHash: presentedHash, proven };
      const current = await this.steps.judgeMiss(presented, record, synced);
      if (current) return [current, 'grace'];
      // 'advance': the presented token is the current one, yet the rotation missed: a write in
      // between (retry once).
    }
    throw keptChanging();
  }

  /** The hot path: one conditional find-and-modify, then versions from the cache. Null when it matched nothing. */
  private rotate(
    parsed: ParsedRefreshToken,
    presentedHash: string,
    proven: ProvenKey | undefined,
    synced: Promise<boolean>,
  ): Promise<Answered | null> {
    // 4 billion rotations: the slow path calls that the end of the session, never a wrap-around.
    if (parsed.generation >= MAX_GENERATION) return Promise.resolve(null);
    const { sessionId, generation } = parsed;
    const target = { sessionId, generation, tokenHash: presentedHash, proofJkt: proven?.jkt };
    return this.steps.rotateTo(target, this.options.clock.now(), synced);
  }

  /**
   * DBSC registration: binds the unbound session whose current token is `refreshToken` to the
   * device key that `prove` returns, with a bound lifetime of `boundTtlMs` from now, in one
   * conditional update. `prove` gets the session id (after the token's tag passed, before any
   * I/O) and verifies the registration proof for that session (the HTTP adapter's job); it throws
   * to refuse. `InvalidGrantError` when the token is not a live, current, unbound session's (a
   * replayed registration finds the session already bound). Returns the refresh credential's new
   * expiry (the cookie's).
   */
  async bindDevice(
    refreshToken: unknown,
    prove: (sessionId: string) => Promise<DeviceKey>,
    boundTtlMs: number,
  ): Promise<DeviceBound> {
    return this.tracer.run('bind_device', () => this.devices.bind(refreshToken, prove, boundTtlMs));
  }

  /**
   * DBSC refresh by proof: rotates the device-bound session `sessionId` without its refresh token
   * and extends its bound lifetime to `boundTtlMs` from now. `prove` gets the stored key and the
   * session's current generation and verifies the request's proof with them (a challenge tied to
   * the generation cannot be replayed once the rotation moved past it); it throws to refuse.
   * `InvalidGrantError` for an unknown, revoked, expired or outdated session, or one not bound by
   * DBSC (the HTTP adapter answers those `{"continue": false}`). Costs a read of the record and the
   * conditional rotation.
   */
  async refreshByDeviceProof(
    sessionId: string,
    prove: (key: DeviceKey, generation: number) => Promise<void>,
    boundTtlMs: number,
  ): Promise<TokenResponse> {
    return this.tracer.run('refresh_by_device_proof', () =>
      this.devices.refresh(sessionId, prove, boundTtlMs),
    );
  }

  /**
   * Revoke one session (logout, or "sign out that device"). With `userId`, only if the session
   * is that user's. Returns whether this call revoked it (false if unknown, not theirs, or
   * already revoked). Default reason `'logout'`.
   */
  async revokeSession(
    sessionId: string,
    options: { userId?: string; reason?: string } = {},
  ): Promise<boolean> {
    return this.tracer.run('revoke_session', async () => {
      if (!isSessionId(sessionId)) return false;
      const { repository } = this.options;
      const record = await store(() => repository.findBySessionId(sessionId));
      if (!record || (options.userId !== undefined && record.userId !== options.userId))
        return false;
      return this.steps.revoke(record, options.reason ?? 'logout');
    });
  }

  /**
   * Logout by refresh token. The tag is verified first, so garbage or a forged token revokes
   * nothing (returns false) and costs no I/O. Then its hash must be the record's current one or a
   * listed superseded one: that proves the caller held one of its tokens. A valid tag on a token
   * the session never had revokes nothing and raises `secret.compromise_suspected`. Default
   * reason `'logout'`.
   *
   * A session bound to a key is revoked only with `proven` by that key (a DPoP proof of the
   * request, verified by the HTTP adapter): `InvalidDpopProofError` otherwise, nothing changed, so
   * a copied token cannot log its owner out either.
   */
  async revokeByRefreshToken(
    refreshToken: string,
    reason = 'logout',
    proven?: ProvenKey,
  ): Promise<boolean> {
    return this.tracer.run('revoke_by_token', async () => {
      // A token we never minted costs no I/O here either (logout and revocation are unauthenticated).
      const parsed = this.steps.taggedOrNull(refreshToken);
      if (!parsed) return false;
      const record = await store(() => this.options.repository.findBySessionId(parsed.sessionId));
      if (!record) return false;
      const presented = { generation: parsed.generation, tokenHash: hashToken(refreshToken) };
      const { kind } = provenanceOf(record, presented);
      if (kind === 'current' || kind === 'superseded') {
        const now = this.options.clock.now();
        // A copied cookie of a device-bound session past its bound lifetime cannot end it either.
        if (assertProvenFor(record.binding, proven, now) === 'lapsed') return false;
        return this.steps.revoke(record, reason);
      }
      if (kind === 'never_issued') this.audit.compromiseSuspected(parsed, record);
      return false;
    });
  }

  /**
   * Revoke every session of the user (password change, "log out everywhere"). First bumps the
   * user's minimum version, which kills every existing session and access-token `ver` at once;
   * then hands the record cleanup to the job port (records created before now). If enqueueing
   * fails, the records are revoked inline. Default reason `'user_requested'`.
   */
  async revokeAllForUser(userId: string, reason = 'user_requested'): Promise<void> {
    return this.tracer.run('revoke_all', async () => {
      nonEmpty(userId, 'userId');
      const { repository, versions, jobs, clock } = this.options;
      const now = clock.now();
      const minTokenVersion = await store(() => versions.bumpUserMinVersion(userId));
      await this.revocations.revoked({ kind: 'user', userId });
      let inline = false;
      try {
        await jobs.revokeAll({ userId, reason, requestedAt: now });
      } catch {
        inline = true;
        await store(() =>
          repository.revokeAllForUser(userId, reason, { issuedBefore: now, at: now }),
        );
      }
      this.audit.emit({
        type: 'user.revoked_all',
        at: now,
        userId,
        reason,
        minTokenVersion,
        inline,
      });
    });
  }

  /**
   * Breach response: raise the global minimum version. Sessions exactly one version behind may
   * still refresh for `gracePeriod` (default 0) and keep their old version; all older die.
   */
  async rotateGlobal(input: {
    reason: string;
    gracePeriod?: string | number | undefined;
  }): Promise<GlobalVersion> {
    return this.tracer.run('rotate_global', async () => {
      const reason = nonEmpty(input?.reason, 'reason');
      const gracePeriodMs = parseDuration(input.gracePeriod ?? 0, 'gracePeriod');
      const at = this.options.clock.now();
      const global = await store(() =>
        this.options.versions.bumpGlobal({ reason, gracePeriodMs, at }),
      );
      await this.revocations.revoked({ kind: 'global' });
      this.audit.emit({
        type: 'global.rotated',
        at,
        minVersion: global.minVersion,
        reason,
        gracePeriodMs,
      });
      return global;
    });
  }

  /** The user's sessions that can still refresh, newest first. */
  async listSessions(userId: string): Promise<SessionView[]> {
    return this.tracer.run('list_sessions', async () => {
      nonEmpty(userId, 'userId');
      const { repository, versions, clock } = this.options;
      const now = clock.now();
      const [records, userMinVersion, global] = await store(() =>
        Promise.all([
          repository.listActiveForUser(userId, now),
          versions.getUserMinVersion(userId),
          versions.getGlobal(),
        ]),
      );
      return records
        .filter((record) => judgeVersions(record, userMinVersion, global, now) !== 'outdated')
        .map(sessionView);
    });
  }

  /** The claims of a valid access token; throws `InvalidAccessTokenError`. Algorithm pinned. */
  verifyAccessToken(token: string): AccessTokenClaims {
    return this.steps.accessTokens.verify(token, this.options.clock.now());
  }

  /**
   * Whether an access token's session may still act (instant cut-off): its `ver` is at or above
   * the user's minimum, its `gv` passes the global minimum (with the breach grace rule of
   * `judgeVersions`), and, with `sessions: true`, its session is neither revoked nor gone. Reads
   * go through `revocationCache`, which a revocation through this service, or a notice on the
   * `revocationBus`, clears at once. Throws `StoreUnavailableError` when the stores cannot answer.
   */
  async isAccessTokenCurrent(
    claims: AccessTokenClaims,
    check: { sessions?: boolean } = {},
  ): Promise<boolean> {
    return this.tracer.run('check_revocation', async (span) => {
      const synced = await this.revocations.sync();
      const [[userMinVersion, global], sessionLive] = await store(() =>
        Promise.all([
          this.revocations.versions(claims.sub, synced),
          check.sessions ? this.revocations.isSessionLive(claims, synced) : true,
        ]),
      );
      const session = { tokenVersion: claims.ver, globalVersionAtIssuance: claims.gv ?? 0 };
      const current =
        sessionLive &&
        judgeVersions(session, userMinVersion, global, this.options.clock.now()) !== 'outdated';
      span.set({ 'refresh_rotation.current': current });
      return current;
    });
  }

  /** Report activity on a session (via the job port). Never throws: a rejected job is counted in `droppedTouches`. */
  async touch(sessionId: string): Promise<void> {
    try {
      await this.options.jobs.touch({ sessionId, at: this.options.clock.now() });
    } catch {
      this.dropped += 1;
    }
  }
}

/** The span's binding attribute: how the session is bound (`dpop`, `dbsc`) or `none`. */
function bindingOf(record: RefreshTokenRecord): string {
  return record.binding?.method ?? 'none';
}
