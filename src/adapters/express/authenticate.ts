import type { Request, RequestHandler, Response } from 'express';
import { InvalidAccessTokenError, InvalidDpopProofError, OptionsError } from '../../domain/errors';
import type { AccessTokenClaims, RotationService } from '../../rotation-service';
import {
  createDPoPVerifier,
  publicUrlOption,
  requestUrl,
  type DPoPVerifier,
  type DPoPVerifierOptions,
} from './dpop';
import {
  sendError,
  setNoStore,
  DEFAULT_RETRY_AFTER_SECONDS,
  type HttpErrorContext,
} from './errors';
import type { AdapterLogger, AuthContext } from './types';

/** DPoP at a protected resource: the `dpop` option of `authenticate()`. */
export interface AuthenticateDPoPOptions extends DPoPVerifierOptions {
  /**
   * The public origin clients call this API at, e.g. `https://api.example.com`: a proof's `htu`
   * must be this origin plus the request's path (`req.originalUrl`, query ignored). Configured
   * rather than read from `Host`, which a proxy may rewrite and a client may choose. Required.
   */
  publicOrigin: string;
}

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
  /**
   * Accept DPoP-bound access tokens (RFC 9449 §7): `Authorization: DPoP <token>` with a `DPoP`
   * proof by the key of the token's `cnf.jkt`, for this request's method and URL, carrying the
   * token's `ath`. Default off. Bearer tokens without `cnf` keep working either way; a token
   * with `cnf` is refused as a bearer token whether this is on or not.
   */
  dpop?: AuthenticateDPoPOptions | undefined;
}

// RFC 6750 §2.1: "Bearer" 1*SP b64token.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
// RFC 9449 §7.1: "DPoP" 1*SP token68, the same characters.
const DPOP = /^DPoP +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** The access token of `Authorization` and its scheme. */
export interface AccessCredentials {
  scheme: 'Bearer' | 'DPoP';
  token: string;
}

/**
 * The access token of the request with its scheme; null when there is no Authorization header,
 * false when it is neither `Bearer` nor `DPoP`.
 */
export function accessCredentials(req: Request): AccessCredentials | null | false {
  const header = req.get('authorization');
  if (header === undefined || header === '') return null;
  const bearer = BEARER.exec(header)?.[1];
  if (bearer !== undefined) return { scheme: 'Bearer', token: bearer };
  const dpop = DPOP.exec(header)?.[1];
  if (dpop !== undefined) return { scheme: 'DPoP', token: dpop };
  return false;
}

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

function sendMissing(res: Response, dpop: DPoPVerifier | null): void {
  // RFC 6750 §3.1: a request without credentials gets the challenge without an error code; with
  // DPoP on, a DPoP challenge too (RFC 9449 §7.1), so a client learns both are accepted.
  setNoStore(res);
  res.setHeader(
    'WWW-Authenticate',
    dpop ? ['Bearer', `DPoP algs="${dpop.algorithms.join(' ')}"`] : 'Bearer',
  );
  res
    .status(401)
    .json({ error: 'invalid_token', error_description: 'An access token is required.' });
}

/** The DPoP side of a guard, validated once (`authenticate`'s, and the router's for logout). */
export interface ResourceDPoP {
  verifier: DPoPVerifier;
  origin: string;
}

/** Validates `authenticate`'s `dpop` option; null when DPoP is off. */
export function resourceDPoP(options: AuthenticateDPoPOptions | undefined): ResourceDPoP | null {
  if (options === undefined) return null;
  if (typeof options !== 'object' || options === null)
    throw new OptionsError('dpop must be an object: { publicOrigin, replayCache, nonce? }');
  return {
    origin: publicUrlOption(options.publicOrigin, 'dpop.publicOrigin', 'origin'),
    verifier: createDPoPVerifier(options, 'dpop'),
  };
}

/**
 * A DPoP-scheme token's proof: present, valid for this request and this token (`ath`), and by
 * the key the token is bound to.
 */
async function checkProof(
  req: Request,
  token: string,
  claims: AccessTokenClaims,
  dpop: ResourceDPoP,
): Promise<void> {
  const bound = claims.cnf?.jkt;
  if (bound === undefined)
    throw new InvalidAccessTokenError('a DPoP access token must be bound to a key (cnf.jkt)');
  const proof = await dpop.verifier.verifyRequest(req, requestUrl(req, dpop.origin), token);
  if (proof === undefined)
    throw new InvalidDpopProofError('a DPoP proof is required with a DPoP access token');
  if (proof.jkt !== bound)
    throw new InvalidDpopProofError(
      'the DPoP proof is not signed by the key the access token is bound to',
    );
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
 * The verified claims of the request's access token, null when it has no Authorization header:
 * a bearer token without `cnf`, or (with `dpop`) a DPoP-scheme token with a valid proof by its
 * key. `context.challenge` becomes `DPoP` as soon as the request is known to be about a bound
 * token, so the refusal challenges with the scheme the client must use.
 */
export async function verifiedAccessClaims(
  req: Request,
  service: RotationService,
  dpop: ResourceDPoP | null,
  context: HttpErrorContext,
): Promise<AccessTokenClaims | null> {
  const credentials = accessCredentials(req);
  if (credentials === null) return null;
  if (credentials === false || (credentials.scheme === 'DPoP' && dpop === null))
    throw new InvalidAccessTokenError('the Authorization header is not a bearer token');
  if (credentials.scheme === 'DPoP') context.challenge = 'DPoP';
  const claims = service.verifyAccessToken(credentials.token);
  if (credentials.scheme === 'Bearer' && claims.cnf !== undefined) {
    // A bound token is worthless without its key: sent as a bearer token, it is a copy.
    context.challenge = 'DPoP';
    throw new InvalidAccessTokenError(
      'a DPoP-bound access token must be sent with the DPoP scheme and a proof',
    );
  }
  if (dpop !== null && credentials.scheme === 'DPoP')
    await checkProof(req, credentials.token, claims, dpop);
  return claims;
}

/**
 * Middleware that requires a valid access token and sets `req.auth`. Verification uses the
 * service's pinned algorithm and checks `iss`/`aud` when configured. Answers 401 with
 * `WWW-Authenticate: Bearer error="invalid_token"` for a bad, expired or (with `checkRevocation`)
 * revoked token, 401 with a bare `Bearer` challenge when there is none, and 503 when
 * `checkRevocation` cannot reach the store.
 *
 * A token bound to a DPoP key (`cnf.jkt`) sent as `Bearer` is refused: 401 `invalid_token` with
 * a `DPoP` challenge. With the `dpop` option, `Authorization: DPoP <token>` is accepted with a
 * valid proof (RFC 9449 §7) by the token's key; a missing or invalid proof is 401
 * `invalid_dpop_proof` (or `use_dpop_nonce` with nonces on), challenged with
 * `WWW-Authenticate: DPoP error="…", algs="…"`; every answer then carries `DPoP-Nonce` when
 * nonces are on. Throws `OptionsError` for an invalid `checkRevocation` or `dpop`.
 */
export function authenticate(options: AuthenticateOptions): RequestHandler {
  const { service, trackActivity = false } = options;
  const checkRevocation = revocationCheck(options.checkRevocation);
  const logger = options.logger ?? console;
  const retryAfterSeconds = options.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS;
  const dpop = resourceDPoP(options.dpop);

  async function verify(req: Request, context: HttpErrorContext): Promise<AuthContext | null> {
    const claims = await verifiedAccessClaims(req, service, dpop, context);
    if (claims === null) return null;
    if (checkRevocation && !(await service.isAccessTokenCurrent(claims, checkRevocation))) {
      throw new InvalidAccessTokenError('the access token was revoked');
    }
    return authContext(claims);
  }

  return function authenticateRequest(req, res, next) {
    const nonce = dpop?.verifier.currentNonce();
    if (nonce !== undefined) res.setHeader('DPoP-Nonce', nonce);
    const context: HttpErrorContext = {
      endpoint: 'resource',
      dpopAlgorithms: dpop?.verifier.algorithms,
    };
    verify(req, context).then(
      (auth) => {
        if (auth === null) return sendMissing(res, dpop?.verifier ?? null);
        req.auth = auth;
        if (trackActivity) void service.touch(auth.sessionId).catch(() => undefined);
        next();
      },
      (error: unknown) => sendError(req, res, error, { logger, retryAfterSeconds, context }),
    );
  };
}
