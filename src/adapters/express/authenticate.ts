import type { Request, RequestHandler } from 'express';
import { InvalidAccessTokenError, OptionsError } from '../../domain/errors';
import type { AccessTokenClaims, RotationService } from '../../rotation-service';
import { sendError, setNoStore, DEFAULT_RETRY_AFTER_SECONDS } from './errors';
import type { AdapterLogger, AuthContext } from './types';

/** Options of `authenticate()`. */
export interface AuthenticateOptions {
  /** The service whose access tokens are accepted (its algorithms, key, issuer and audience). */
  service: RotationService;
  /**
   * Refuse (401) an access token whose session was revoked, instead of trusting it until it
   * expires. Default false (stateless: the signature and expiry only).
   *
   * - `true`: the token's versions: refused after a password change or logout-all (user minimum)
   *   and after a breach rotation (global minimum, with its grace rule).
   * - `{ sessions: true }`: the versions, and the session itself: refused once that session was
   *   signed out, deleted from the sessions page, revoked for reuse or through `POST /revoke`.
   *
   * Each check is a read through the service's `revocationCache` (versions, and one record read
   * by id per session), cleared at once by revocations on this instance and, with a
   * `revocationBus`, on every instance. See
   * docs/benchmarks.md for the cost per request.
   */
  checkRevocation?: boolean | { sessions?: boolean } | undefined;
  /**
   * Record the session's last use (a deduplicated `touch` job; never fails the request).
   * Default false.
   */
  trackActivity?: boolean | undefined;
  /** Where unexpected failures are logged when the request has no `req.log`. Default `console`. */
  logger?: AdapterLogger | undefined;
  /** `Retry-After` seconds when `checkRevocation` cannot reach the store. Default 5. */
  retryAfterSeconds?: number | undefined;
}

// RFC 6750 §2.1: "Bearer" 1*SP b64token.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** The bearer token of the request, null when there is no Authorization header, or false when it is not a bearer token. */
export function bearerToken(req: Request): string | null | false {
  const header = req.get('authorization');
  if (header === undefined || header === '') return null;
  return BEARER.exec(header)?.[1] ?? false;
}

/** The `req.auth` value for verified claims. */
export function authContext(claims: AccessTokenClaims): AuthContext {
  return { userId: claims.sub, sessionId: claims.sid, tokenVersion: claims.ver, claims };
}

function sendMissing(res: Parameters<RequestHandler>[1]): void {
  // RFC 6750 §3.1: a request without credentials gets the challenge without an error code.
  setNoStore(res);
  res.setHeader('WWW-Authenticate', 'Bearer');
  res
    .status(401)
    .json({ error: 'invalid_token', error_description: 'An access token is required.' });
}

function revocationCheck(
  value: AuthenticateOptions['checkRevocation'],
): { sessions: boolean } | null {
  if (value === undefined || value === false) return null;
  if (value === true) return { sessions: false };
  if (typeof value === 'object' && value !== null) {
    const { sessions = false } = value;
    if (typeof sessions === 'boolean') return { sessions };
  }
  throw new OptionsError(
    `checkRevocation must be true, false or { sessions: boolean }; got ${JSON.stringify(value)}`,
  );
}

/**
 * Middleware that requires a valid bearer access token and sets `req.auth`. Verification uses the
 * service's pinned algorithm and checks `iss`/`aud` when configured. Answers 401 with
 * `WWW-Authenticate: Bearer error="invalid_token"` for a bad, expired or (with `checkRevocation`)
 * revoked token, 401 with a bare `Bearer` challenge when there is none, and 503 when
 * `checkRevocation` cannot reach the store. Throws `OptionsError` for an invalid `checkRevocation`.
 */
export function authenticate(options: AuthenticateOptions): RequestHandler {
  const { service, trackActivity = false } = options;
  const checkRevocation = revocationCheck(options.checkRevocation);
  const logger = options.logger ?? console;
  const retryAfterSeconds = options.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS;

  async function verify(req: Request): Promise<AuthContext | null> {
    const token = bearerToken(req);
    if (token === null) return null;
    if (token === false)
      throw new InvalidAccessTokenError('the Authorization header is not a bearer token');
    const claims = service.verifyAccessToken(token);
    if (checkRevocation && !(await service.isAccessTokenCurrent(claims, checkRevocation))) {
      throw new InvalidAccessTokenError('the access token was revoked');
    }
    return authContext(claims);
  }

  return function authenticateRequest(req, res, next) {
    verify(req).then(
      (auth) => {
        if (auth === null) return sendMissing(res);
        req.auth = auth;
        if (trackActivity) void service.touch(auth.sessionId).catch(() => undefined);
        next();
      },
      (error: unknown) => sendError(req, res, error, { logger, retryAfterSeconds }),
    );
  };
}
