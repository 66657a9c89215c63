/**
 * What the use cases of `RotationService` take and answer, and the checks of their inputs (a bad
 * input is an `InvalidRequestError`, never a 500).
 */
import type { AccessTokens } from './domain/access-token';
import { InvalidRequestError } from './domain/errors';
import type { ClientInfo, RefreshTokenRecord } from './domain/refresh-token';
import { credentialExpiry, type ProvenKey } from './domain/session-binding';

/** What `issue` and `refresh` answer (the body of RFC 6749 §5.1, plus ids for the caller). */
export interface TokenResponse {
  accessToken: string;
  /** `DPoP` for a session bound by DPoP (its access token carries `cnf.jkt`), else `Bearer`. */
  tokenType: 'Bearer' | 'DPoP';
  /** Access-token lifetime in seconds. */
  expiresIn: number;
  refreshToken: string;
  /**
   * When the refresh token dies if unused (idle expiry, capped by the absolute one; for a
   * device-bound session also by its bound lifetime).
   */
  refreshExpiresAt: Date;
  /**
   * Seconds from now to `refreshExpiresAt` (the refresh cookie's `Max-Age`: relative, so a browser
   * whose clock is off keeps it as long as the server means).
   */
  refreshExpiresIn: number;
  sessionId: string;
  userId: string;
}

/** Whole seconds from `now` until `at`, never negative. */
export function secondsUntil(at: Date, now: Date): number {
  return Math.max(0, Math.floor((at.getTime() - now.getTime()) / 1000));
}

/**
 * The user's minimum token version at one moment, from {@link RotationService.versionSnapshot}.
 * Taken before a login reads and checks the password, and handed to `issue({ at })`, it makes the
 * new session as old as the credential check: a revoke-all (password change) that lands while the
 * check runs kills it too.
 */
export interface VersionSnapshot {
  readonly userId: string;
  readonly userMinVersion: number;
}

/** What `issue` takes. */
export interface IssueOptions {
  userId: string;
  /** Shown on the sessions page. */
  client?: ClientInfo | undefined;
  /**
   * A snapshot of this user taken before the credential check (docs/architecture.md, "Revocation
   * and versions"). Without it the session gets the version current at issue time, so a login whose
   * password check straddles a password change would outlive it.
   */
  at?: VersionSnapshot | undefined;
  /**
   * The key a DPoP proof of the login request proved (verified by the HTTP adapter): the session
   * is born bound to it, and every refresh must then carry a proof by that key.
   */
  dpop?: ProvenKey | undefined;
}

/** One live session as the sessions page shows it. */
export interface SessionView {
  /** The session id. */
  id: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  rotatedAt: Date | null;
  expiresAt: Date;
  absoluteExpiresAt: Date;
  client: ClientInfo;
}

const MAX_CLIENT_FIELD = 512;

/** The client fields a login records: non-empty strings only, each cut to 512 characters. */
export function clientInfo(client: ClientInfo | undefined): ClientInfo {
  const result: ClientInfo = {};
  for (const field of ['userAgent', 'ip', 'label'] as const) {
    const value = client?.[field];
    if (typeof value === 'string' && value.length > 0)
      result[field] = value.slice(0, MAX_CLIENT_FIELD);
  }
  return result;
}

/** `at` if it is a version snapshot of `userId`; `InvalidRequestError` otherwise. */
export function snapshotOf(at: VersionSnapshot, userId: string): VersionSnapshot {
  const version = (at as Partial<VersionSnapshot> | null)?.userMinVersion;
  if (at?.userId !== userId || !Number.isSafeInteger(version) || (version as number) < 0)
    throw new InvalidRequestError('at must be the versionSnapshot() of the same userId');
  return at;
}

/** `value` if it is a non-empty string; `InvalidRequestError` naming `name` otherwise. */
export function nonEmpty(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0)
    throw new InvalidRequestError(`${name} must be a non-empty string`);
  return value;
}

/** The answer for `record` with `refreshToken`, its access token signed at `now` (bound: `cnf.jkt`). */
export function tokenResponse(
  accessTokens: AccessTokens,
  record: RefreshTokenRecord,
  refreshToken: string,
  now: Date,
): TokenResponse {
  const jkt = record.binding?.method === 'dpop' ? record.binding.jkt : undefined;
  const refreshExpiresAt = credentialExpiry(record.expiresAt, record.binding);
  return {
    accessToken: accessTokens.sign(
      {
        userId: record.userId,
        sessionId: record.sessionId,
        version: record.tokenVersion,
        globalVersion: record.globalVersionAtIssuance,
        jkt,
      },
      now,
    ),
    tokenType: jkt === undefined ? 'Bearer' : 'DPoP',
    expiresIn: accessTokens.expiresIn,
    refreshToken,
    refreshExpiresAt,
    refreshExpiresIn: secondsUntil(refreshExpiresAt, now),
    sessionId: record.sessionId,
    userId: record.userId,
  };
}

/** What the sessions page shows of `record`. */
export function sessionView(record: RefreshTokenRecord): SessionView {
  return {
    id: record.sessionId,
    createdAt: record.createdAt,
    lastUsedAt: record.lastUsedAt,
    rotatedAt: record.rotatedAt,
    expiresAt: record.expiresAt,
    absoluteExpiresAt: record.absoluteExpiresAt,
    client: record.client,
  };
}

/** What the caller of `refresh` knows of the request, for its span. */
export interface RefreshContext {
  /** How the refresh token came (the HTTP adapter's cookie or body transport). */
  transport?: 'cookie' | 'body' | undefined;
}
