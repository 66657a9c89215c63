import type { Request, RequestHandler } from 'express';
import { InvalidAccessTokenError } from '../../domain/errors';
import type { AccessTokenClaims, RotationService } from '../../rotation-service';
import { sendError, setNoStore, DEFAULT_RETRY_AFTER_SECONDS } from './errors';
import type { AdapterLogger, AuthContext } from './types';

/** Options of `authenticate()`. */
export interface AuthenticateOptions {
  /** The service whose access tokens are accepted (its algorithms, key, issuer and audience). */
  service: RotationService;
  /**
   * Also reject an access token whose `ver` is below the user's minimum version (after a password
   * change or logout-all), instead of waiting for it to expire. Costs one briefly cached read.
   * Default false.
   */
  checkRevocation?: boolean;
  /**
   * Record the session's last use (a deduplicated `touch` job; never fails the request).
   * Default false.
   */
  trackActivity?: boolean;
  /** Where unexpected failures are logged when the request has no `req.log`. Default `console`. */
  logger?: AdapterLogger;
  /** `Retry-After` seconds when `checkRevocation` cannot reach the store. Default 5. */
  retryAfterSeconds?: number;
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

/**
 * Middleware that requires a valid bearer access token and sets `req.auth`. Verification uses the
 * service's pinned algorithm and checks `iss`/`aud` when configured. Answers 401 with
 * `WWW-Authenticate: Bearer error="invalid_token"` for a bad, expired or (with `checkRevocation`)
 * revoked token, 401 with a bare `Bearer` challenge when there is none, and 503 when
 * `checkRevocation` cannot reach the store.
 */
export function authenticate(options: AuthenticateOptions): RequestHandler {
  const { service, checkRevocation = false, trackActivity = false } = options;
  const logger = options.logger ?? console;
  const retryAfterSeconds = options.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS;

  async function verify(req: Request): Promise<AuthContext | null> {
    const token = bearerToken(req);
    if (token === null) return null;
    if (token === false)
      throw new InvalidAccessTokenError('the Authorization header is not a bearer token');
    const claims = service.verifyAccessToken(token);
    if (checkRevocation && !(await service.isAccessTokenCurrent(claims))) {
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
