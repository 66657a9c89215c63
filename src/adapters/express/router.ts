import express, { type Request, type Response, type Router } from 'express';
import {
  InvalidAccessTokenError,
  InvalidDpopProofError,
  InvalidRequestError,
  OptionsError,
  RefreshRotationError,
  UnsupportedGrantTypeError,
} from '../../domain/errors';
import type { ClientInfo } from '../../domain/refresh-token';
import type {
  RotationService,
  SessionView,
  TokenResponse,
  VersionSnapshot,
} from '../../rotation-service';
import {
  accessCredentials,
  authenticate,
  resourceDPoP,
  verifiedAccessClaims,
  type AuthenticateDPoPOptions,
  type ResourceDPoP,
} from './authenticate';
import { createCookieTransport, type CookieTransport, type CookieTransportOptions } from './cookie';
import { assertSameOriginFetch, createDbsc, DbscStaleChallenge, type Dbsc } from './dbsc';
import {
  createDPoPVerifier,
  publicUrlOption,
  requestUrl,
  type DPoPAlgorithm,
  type DPoPProof,
  type DPoPVerifier,
  type DPoPVerifierOptions,
} from './dpop';
import {
  DEFAULT_RETRY_AFTER_SECONDS,
  sendError,
  setNoStore,
  type HttpErrorContext,
} from './errors';
import { asyncHandler } from './handler';
import { createRevocationHandler } from './revocation';
import type { AdapterLogger } from './types';

/** DPoP at the token endpoint (RFC 9449 §5): the `dpop` option of `createRefreshRouter()`. */
export interface RefreshRouterDPoPOptions extends DPoPVerifierOptions {
  /**
   * The public URL of this router's `POST /token` as clients call it, e.g.
   * `https://api.example.com/auth/token`: a token request's proof must carry it as `htu` (query
   * and fragment ignored). Configured, never derived from `Host`, which a proxy may rewrite and a
   * client may choose. Its origin is also the public origin of the router's other routes and of
   * `verifyDPoP`'s default URL. Required.
   */
  tokenEndpointUrl: string;
  /**
   * Refuse a token request without a proof (`POST /token`, and `verifyDPoP` for a login), so
   * every new session is bound. Default false: a proof binds the session when one comes, and a
   * request without one gets a bearer session.
   */
  required?: boolean | undefined;
}

/** Options of `createRefreshRouter()`. */
export interface RefreshRouterOptions {
  service: RotationService;
  /**
   * Refresh-cookie transport for browser apps: `true` for the defaults, an object to tune it.
   * Default off (tokens only in bodies). When on, body clients keep working: a request gets the
   * cookie only when it asks for it (`X-Token-Transport: cookie`) or refreshes with the cookie.
   */
  cookie?: boolean | CookieTransportOptions | undefined;
  /** Largest body accepted on `POST /token`, `POST /logout` and `POST /revoke`. Default `'4kb'`. */
  bodyLimit?: string | number | undefined;
  /**
   * What `logout-all` and the sessions routes check before trusting an access token (the
   * `authenticate` option of the same name). Default `{ sessions: true }`: a token whose session
   * was signed out, deleted or revoked, or whose versions were revoked (password change,
   * logout-all, breach rotation), is refused, so a signed-out thief cannot list or delete the
   * owner's sessions. `true` checks the versions only; `false` nothing beyond the signature.
   */
  checkRevocation?: boolean | { sessions?: boolean } | undefined;
  /** Where unexpected failures are logged when the request has no `req.log`. Default `console`. */
  logger?: AdapterLogger | undefined;
  /** `Retry-After` seconds on 503 answers. Default 5. */
  retryAfterSeconds?: number | undefined;
  /**
   * Accept DPoP proofs (RFC 9449) on token requests: a `POST /token` with one valid `DPoP` proof
   * binds the session to the proof's key, and a bound session's refresh needs a proof by that
   * key. The router's access-token routes (`logout`, `logout-all`, sessions) then accept
   * `Authorization: DPoP` too. Default off: a `DPoP` header is ignored and sessions are bearer
   * sessions.
   */
  dpop?: RefreshRouterDPoPOptions | undefined;
}

/** The body of a successful token answer (RFC 6749 §5.1). */
export interface TokenResponseBody {
  access_token: string;
  /** `DPoP` when the session is bound to a DPoP key (its access tokens then carry `cnf.jkt`). */
  token_type: 'Bearer' | 'DPoP';
  /** Seconds until the access token expires. */
  expires_in: number;
  /** Absent when the refresh token went into the cookie. */
  refresh_token?: string | undefined;
}

/** One entry of `GET /sessions`. */
export interface SessionBody {
  id: string;
  created_at: string;
  last_used_at: string | null;
  expires_at: string;
  absolute_expires_at: string;
  client: { user_agent?: string; ip?: string; label?: string };
  /** Whether this is the session of the access token making the request. */
  current: boolean;
}

/** The input of `issue()`. */
export interface IssueInput {
  userId: string;
  /** Shown on the sessions page. Default: the request's User-Agent and IP. */
  client?: ClientInfo | undefined;
  /**
   * `service.versionSnapshot(userId)` taken before your route read and checked the password, so
   * a login cannot outlive a password change it raced (see the service's `issue`).
   */
  at?: VersionSnapshot | undefined;
  /**
   * The login request's DPoP proof, from `router.verifyDPoP(req)`: the new session is bound to
   * its key (refreshes need a proof by it; access tokens carry `cnf.jkt`). Default none: a bearer
   * session.
   */
  dpop?: DPoPProof | undefined;
}

/** The Express router of `createRefreshRouter()`, plus the login helper. */
export interface RefreshRouter extends Router {
  /**
   * Start a session for a user your login route has authenticated, and return the body to send.
   * With `res`, sets `Cache-Control: no-store` and, when the cookie transport is on and the request
   * asked for it, the refresh cookie (then the body has no `refresh_token`). Rejects like the
   * service's `issue` (`StoreUnavailableError`; `InvalidGrantError` when `at` is older than a
   * revoke-all: answer it as a failed login).
   *
   * @example
   * app.post('/auth/login', async (req, res) => {
   *   const id = await users.idOf(req.body.email);
   *   const at = await service.versionSnapshot(id); // before the password hash is read
   *   await checkPassword(id, req.body.password);
   *   res.json(await auth.issue(res, { userId: id, at }));
   * });
   */
  issue(res: Response | undefined, input: IssueInput): Promise<TokenResponseBody>;
  /**
   * Verify the `DPoP` proof of your login request (or any token-issuing route of yours), for
   * `router.issue(res, { userId, at, dpop })`. Resolves `undefined` when the request has no proof
   * (or the `dpop` option is off), the proof's `{ jkt }` when it is valid; rejects with
   * `InvalidDpopProofError` (also for a missing proof with `dpop.required`) or `UseDpopNonceError`.
   * `url` is the public URL the proof must name (`htu`); default the origin of
   * `dpop.tokenEndpointUrl` plus the request's path. With nonces on, sets `DPoP-Nonce` on the
   * answer. Call it before checking the password, so a refused proof costs no hash.
   */
  verifyDPoP(req: Request, url?: string): Promise<DPoPProof | undefined>;
  /** The DPoP algorithms the token endpoint accepts (for `authorizationServerMetadata`); `undefined` when DPoP is off. */
  readonly dpopAlgorithms: readonly DPoPAlgorithm[] | undefined;
}

/** The router's DPoP settings, validated once. */
interface RouterDPoP {
  verifier: DPoPVerifier;
  tokenEndpointUrl: string;
  origin: string;
  required: boolean;
  /** The same checks for the router's access-token routes, on the token endpoint's origin. */
  resource: ResourceDPoP;
  /** `authenticate`'s option for those routes. */
  authenticate: AuthenticateDPoPOptions;
}

function resolveDPoP(options: RefreshRouterOptions['dpop']): RouterDPoP | null {
  if (options === undefined) return null;
  if (typeof options !== 'object' || options === null)
    throw new OptionsError(
      'dpop must be an object: { tokenEndpointUrl, replayCache, nonce?, algorithms?, required? }',
    );
  const tokenEndpointUrl = publicUrlOption(
    options.tokenEndpointUrl,
    'dpop.tokenEndpointUrl',
    'url',
  );
  const required = options.required ?? false;
  if (typeof required !== 'boolean')
    throw new OptionsError(`dpop.required must be true or false; got ${JSON.stringify(required)}`);
  const { replayCache, algorithms, iatWindow, nonce, clock } = options;
  const verifierOptions = { replayCache, algorithms, iatWindow, nonce, clock };
  const origin = new URL(tokenEndpointUrl).origin;
  const authenticateOptions = { ...verifierOptions, publicOrigin: origin };
  return {
    verifier: createDPoPVerifier(verifierOptions, 'dpop'),
    tokenEndpointUrl,
    origin,
    required,
    resource: resourceDPoP(authenticateOptions)!,
    authenticate: authenticateOptions,
  };
}

function setDPoPNonce(res: Response | undefined, dpop: RouterDPoP | null): void {
  const nonce = dpop?.verifier.currentNonce();
  if (nonce !== undefined && res && !res.headersSent) res.setHeader('DPoP-Nonce', nonce);
}

const PROOF_REQUIRED = 'a DPoP proof is required: send one DPoP header with the token request';

function resolveCookie(
  options: RefreshRouterOptions,
  logger: AdapterLogger,
): CookieTransport | null {
  if (options.cookie === undefined || options.cookie === false) return null;
  const cookieOptions = options.cookie === true ? {} : options.cookie;
  const warn = options.logger
    ? (message: string) => logger.warn({}, message)
    : (message: string) =>
        process.emitWarning(message, { code: 'REFRESH_ROTATION_INSECURE_COOKIE' });
  return createCookieTransport(cookieOptions, warn);
}

function resolveDbsc(options: RefreshRouterOptions): Dbsc | null {
  const dbsc = typeof options.cookie === 'object' ? options.cookie.dbsc : undefined;
  if (dbsc === undefined) return null;
  if (typeof options.cookie === 'object' && options.cookie.secure === false)
    throw new OptionsError(
      'cookie.dbsc needs cookie.secure: browsers speak DBSC over HTTPS only, with a Secure cookie',
    );
  return createDbsc(dbsc);
}

/** A refresh by proof that came without one: answered 403 with this challenge. */
class DbscChallengeNeeded extends Error {
  constructor(readonly challenge: string) {
    super('a DBSC proof is needed');
  }
}

function bodyOf(req: Request): Record<string, unknown> {
  const body: unknown = req.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return {};
  return body as Record<string, unknown>;
}

function field(body: Record<string, unknown>, name: string): unknown {
  return Object.prototype.hasOwnProperty.call(body, name) ? body[name] : undefined;
}

function tokenBody(result: TokenResponse, includeRefreshToken: boolean): TokenResponseBody {
  const body: TokenResponseBody = {
    access_token: result.accessToken,
    token_type: result.tokenType,
    expires_in: result.expiresIn,
  };
  if (includeRefreshToken) body.refresh_token = result.refreshToken;
  return body;
}

function sessionBody(session: SessionView, currentSessionId: string): SessionBody {
  const { userAgent, ip, label } = session.client;
  return {
    id: session.id,
    created_at: session.createdAt.toISOString(),
    last_used_at: session.lastUsedAt?.toISOString() ?? null,
    expires_at: session.expiresAt.toISOString(),
    absolute_expires_at: session.absoluteExpiresAt.toISOString(),
    client: {
      user_agent: userAgent,
      ip,
      label,
    },
    current: session.id === currentSessionId,
  };
}

/** What a login records about the client by default. */
export function clientInfoFrom(req: Request): ClientInfo {
  const userAgent = req.get('user-agent')?.slice(0, 256);
  return {
    ...(userAgent ? { userAgent } : {}),
    ...(req.ip ? { ip: req.ip } : {}),
  };
}

/** A string parameter given at most once; a repeated form field arrives as an array. */
const UNSUPPORTED_BODY =
  'Send refresh_token in an application/x-www-form-urlencoded or application/json body.';

function singleString(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new InvalidRequestError(`${name} must be a single string.`);
  return value;
}

function isGrantRejection(error: unknown): boolean {
  return (
    error instanceof RefreshRotationError &&
    (error.code === 'invalid_grant' || error.code === 'malformed_token')
  );
}

function bodyLimitOf(options: RefreshRouterOptions): string | number {
  const limit = options.bodyLimit ?? '4kb';
  if (!(typeof limit === 'string' ? limit.length > 0 : Number.isFinite(limit) && limit > 0)) {
    throw new OptionsError(`bodyLimit must be a positive size such as '4kb'; got ${String(limit)}`);
  }
  return limit;
}

/**
 * Build the token router (the contract: docs/express.md, "The HTTP contract"): `POST /token`,
 * `POST /logout`, `POST /revoke` (RFC 7009), `POST /logout-all`, `GET /sessions`,
 * `DELETE /sessions/:id`.
 * Mount it where you like (`app.use('/auth', router)`). Works on Express 4 and 5; parses only its
 * own small bodies (JSON and form), so it needs no body parser from the app. Every answer carries
 * `Cache-Control: no-store`; errors follow the one table in `errors.ts`. Throws `OptionsError` for
 * invalid options.
 */
export function createRefreshRouter(options: RefreshRouterOptions): RefreshRouter {
  const { service } = options;
  if (typeof service?.refresh !== 'function') {
    throw new OptionsError('service must be a RotationService; got ' + typeof service);
  }
  const logger = options.logger ?? console;
  const retryAfterSeconds = options.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS;
  const limit = bodyLimitOf(options);
  const cookie = resolveCookie(options, logger);
  const dpop = resolveDPoP(options.dpop);
  const dbsc = resolveDbsc(options);
  const requireAccessToken = authenticate({
    service,
    checkRevocation: options.checkRevocation ?? { sessions: true },
    logger,
    retryAfterSeconds,
    dpop: dpop?.authenticate,
  });
  /** How a route's errors are answered when not as at a token endpoint (the default). */
  const errorContexts = new WeakMap<Response, HttpErrorContext>();
  const parseBody = [
    express.json({ limit, strict: true }),
    express.urlencoded({ limit, extended: false, parameterLimit: 20 }),
  ];

  async function token(req: Request, res: Response): Promise<void> {
    const body = bodyOf(req);
    const grantType = singleString(field(body, 'grant_type'), 'grant_type');
    if (grantType !== undefined && grantType !== 'refresh_token')
      throw new UnsupportedGrantTypeError();
    const fromCookie = cookie?.read(req);
    let presented = singleString(field(body, 'refresh_token'), 'refresh_token');
    let viaCookie = false;
    if (presented === undefined && cookie && fromCookie !== undefined) {
      cookie.assertSameOrigin(req);
      presented = fromCookie;
      viaCookie = true;
    }
    if (presented === undefined && req.is(['json', 'urlencoded']) === false)
      throw new InvalidRequestError(UNSUPPORTED_BODY);
    if (presented === undefined) throw new InvalidRequestError('refresh_token is required.');
    // Checked before the service sees the token: a refused proof changes nothing.
    const proof = await tokenRequestProof(req);
    let result: TokenResponse;
    try {
      result = await service.refresh(presented, proof, {
        transport: viaCookie ? 'cookie' : 'body',
      });
    } catch (error) {
      // A dead cookie would be sent on every later refresh: drop it.
      if (viaCookie && cookie && isGrantRejection(error)) cookie.clear(req, res);
      throw error;
    }
    const useCookie = cookie !== null && (viaCookie || cookie.wanted(req));
    if (useCookie) cookie.set(req, res, result.refreshToken, result);
    res.status(200).json(tokenBody(result, !useCookie));
  }

  /**
   * Why the cookie is cleared only on the cookie branch: a clearing Set-Cookie is applied by the
   * browser whoever caused it, so an answer to a request the cookie did not authenticate (a body
   * token, which a cross-site form can send) must leave the cookie alone, or any site could log
   * the browser out.
   */
  async function logout(req: Request, res: Response): Promise<void> {
    const fromBody = singleString(field(bodyOf(req), 'refresh_token'), 'refresh_token');
    const fromCookie = cookie?.read(req);
    const credentials = accessCredentials(req);
    if (fromBody !== undefined) {
      await service.revokeByRefreshToken(fromBody, 'logout', await revocationProof(req));
    } else if (cookie && fromCookie !== undefined) {
      cookie.assertSameOrigin(req);
      await service.revokeByRefreshToken(fromCookie, 'logout', await revocationProof(req));
      cookie.clear(req, res);
    } else if (credentials) {
      // As at a resource: a bound access token logs out only with a proof by its key.
      const context: HttpErrorContext = {
        endpoint: 'resource',
        dpopAlgorithms: dpop?.verifier.algorithms,
      };
      errorContexts.set(res, context);
      const claims = (await verifiedAccessClaims(req, service, dpop?.resource ?? null, context))!;
      errorContexts.delete(res);
      await service.revokeSession(claims.sid, { userId: claims.sub, reason: 'logout' });
    } else if (credentials === false) {
      throw new InvalidAccessTokenError('the Authorization header is not a bearer token');
    } else if (cookie && req.get(cookie.csrfHeader)) {
      // A browser whose cookie is already gone (second logout) gets its 204: logout is idempotent.
      cookie.assertSameOrigin(req);
    } else {
      throw new InvalidRequestError('refresh_token or an access token is required.');
    }
    res.status(204).end();
  }

  async function logoutAll(req: Request, res: Response): Promise<void> {
    await service.revokeAllForUser(req.auth!.userId, 'user_requested');
    if (cookie) cookie.clear(req, res);
    res.status(204).end();
  }

  async function listSessions(req: Request, res: Response): Promise<void> {
    const auth = req.auth!;
    const sessions = await service.listSessions(auth.userId);
    res.status(200).json({ sessions: sessions.map((s) => sessionBody(s, auth.sessionId)) });
  }

  async function deleteSession(req: Request, res: Response): Promise<void> {
    const auth = req.auth!;
    const id = String(req.params.id);
    const revoked = await service.revokeSession(id, {
      userId: auth.userId,
      reason: 'user_requested',
    });
    if (!revoked) {
      res.status(404).json({ error: 'not_found', error_description: 'No such session.' });
      return;
    }
    if (cookie && id === auth.sessionId) cookie.clear(req, res);
    res.status(204).end();
  }

  async function issue(res: Response | undefined, input: IssueInput): Promise<TokenResponseBody> {
    const req = res?.req;
    const client = input.client ?? (req ? clientInfoFrom(req) : {});
    const useCookie = cookie !== null && req !== undefined && cookie.wanted(req);
    // A session the client could never receive must not be created.
    if (useCookie) cookie.assertCanSet(req);
    const result = await service.issue({
      userId: input.userId,
      client,
      at: input.at,
      dpop: input.dpop,
    });
    if (res) setNoStore(res);
    setDPoPNonce(res, dpop);
    if (useCookie && res) cookie.set(res.req, res, result.refreshToken, result);
    // A session bound by DPoP at login stays so: a binding is never replaced.
    if (useCookie && res && dbsc && result.tokenType === 'Bearer')
      offerDeviceBinding(res, cookie, dbsc, result.sessionId);
    return tokenBody(result, !useCookie);
  }

  /** DBSC: the header that asks the browser to register a device key for this session. */
  function offerDeviceBinding(
    res: Response,
    transport: CookieTransport,
    device: Dbsc,
    sessionId: string,
  ): void {
    const path = `${transport.pathFor(res.req)}/dbsc/register`;
    res.setHeader(
      'Secure-Session-Registration',
      `(${device.algorithms.join(' ')});path="${path}";challenge="${device.challenge(sessionId, null)}";authorization="${device.authorization(sessionId)}"`,
    );
  }

  /** The session instructions a DBSC registration or refresh answers with. */
  function dbscInstructions(req: Request, transport: CookieTransport, sessionId: string) {
    const host = req.get('host') ?? '';
    return {
      session_identifier: sessionId,
      refresh_url: `${transport.pathFor(req)}/dbsc/refresh`,
      scope: {
        origin: `https://${host}`,
        include_site: false,
        scope_specification: [{ type: 'exclude', domain: req.hostname, path: '/favicon.ico' }],
      },
      // No expiry here (the browser refuses it): the real Set-Cookie carries it.
      credentials: [
        { type: 'cookie', name: transport.name, attributes: transport.attributeText(req) },
      ],
    };
  }

  async function dbscRegister(req: Request, res: Response): Promise<void> {
    const transport = cookie!;
    const device = dbsc!;
    assertSameOriginFetch(req);
    const token = transport.read(req);
    if (token === undefined)
      throw new InvalidRequestError('a device-bound session is registered with the refresh cookie');
    const proof = req.get('secure-session-response');
    const bound = await service.bindDevice(
      token,
      (sessionId) => device.verifyRegistration(proof, sessionId),
      device.boundTtlMs,
    );
    transport.set(req, res, token, bound);
    res.status(200).json(dbscInstructions(req, transport, bound.sessionId));
  }

  async function dbscRefresh(req: Request, res: Response): Promise<void> {
    const transport = cookie!;
    const device = dbsc!;
    assertSameOriginFetch(req);
    const sessionId = req.get('sec-secure-session-id') ?? '';
    const proof = req.get('secure-session-response');
    let result: TokenResponse;
    try {
      result = await service.refreshByDeviceProof(
        sessionId,
        async (key, generation) => {
          if (proof === undefined)
            throw new DbscChallengeNeeded(device.challenge(sessionId, generation));
          try {
            await device.verifyRefresh(proof, sessionId, generation, key);
          } catch (error) {
            // Signed by the key, over a challenge a rotation has since moved past: ask again.
            if (error instanceof DbscStaleChallenge)
              throw new DbscChallengeNeeded(device.challenge(sessionId, generation));
            throw error;
          }
        },
        device.boundTtlMs,
      );
    } catch (error) {
      if (error instanceof DbscChallengeNeeded) {
        res.setHeader('Secure-Session-Challenge', `"${error.challenge}";id="${sessionId}"`);
        res.status(403).end();
        return;
      }
      // Revoked, outdated, expired or unknown: the browser ends its DBSC session. Chromium reads
      // `continue` only after a `session_identifier` (without it: InvalidSessionId, a fatal error
      // rather than the server's request; it ends the session either way).
      if (isGrantRejection(error)) {
        transport.clear(req, res);
        res.status(200).json({ session_identifier: sessionId, continue: false });
        return;
      }
      throw error;
    }
    transport.set(req, res, result.refreshToken, result);
    res.status(200).json(dbscInstructions(req, transport, sessionId));
  }

  /** The token request's proof: `undefined` without one (unless required) or with DPoP off. */
  async function tokenRequestProof(req: Request): Promise<DPoPProof | undefined> {
    if (dpop === null) return undefined;
    const proof = await dpop.verifier.verifyRequest(req, dpop.tokenEndpointUrl);
    if (proof === undefined && dpop.required) throw new InvalidDpopProofError(PROOF_REQUIRED);
    return proof;
  }

  /**
   * The proof of a logout or revocation request, if it carries one (`htu`: this route). Optional
   * here: a bearer session logs out without one; the service refuses a bound session without it.
   */
  async function revocationProof(req: Request): Promise<DPoPProof | undefined> {
    if (dpop === null || req.headers.dpop === undefined) return undefined;
    return dpop.verifier.verifyRequest(req, requestUrl(req, dpop.origin));
  }

  async function verifyDPoP(req: Request, url?: string): Promise<DPoPProof | undefined> {
    if (dpop === null) return undefined;
    setDPoPNonce(req.res, dpop);
    const target =
      url === undefined
        ? requestUrl(req, dpop.origin)
        : publicUrlOption(url, 'verifyDPoP url', 'url');
    const proof = await dpop.verifier.verifyRequest(req, target);
    if (proof === undefined && dpop.required) throw new InvalidDpopProofError(PROOF_REQUIRED);
    return proof;
  }

  // Per route, not router.use(): a router mounted at "/" must not touch the app's other answers.
  const noStore: express.RequestHandler = (_req, res, next) => {
    setNoStore(res);
    next();
  };
  const router = express.Router();
  // Every answer of the token endpoint carries a fresh nonce when nonces are on (RFC 9449 §8).
  const dpopNonce: express.RequestHandler = (_req, res, next) => {
    setDPoPNonce(res, dpop);
    next();
  };
  router.post('/token', noStore, dpopNonce, ...parseBody, asyncHandler(token));
  router.post('/logout', noStore, dpopNonce, ...parseBody, asyncHandler(logout));
  router.post(
    '/revoke',
    noStore,
    dpopNonce,
    ...parseBody,
    asyncHandler(createRevocationHandler(service, revocationProof)),
  );
  if (dbsc) {
    router.post('/dbsc/register', noStore, asyncHandler(dbscRegister));
    router.post('/dbsc/refresh', noStore, asyncHandler(dbscRefresh));
  }
  router.post('/logout-all', noStore, requireAccessToken, asyncHandler(logoutAll));
  router.get('/sessions', noStore, requireAccessToken, asyncHandler(listSessions));
  router.delete('/sessions/:id', noStore, requireAccessToken, asyncHandler(deleteSession));
  router.use(function refreshRotationErrors(
    error: unknown,
    req: Request,
    res: Response,
    _next: express.NextFunction,
  ) {
    sendError(req, res, error, { logger, retryAfterSeconds, context: errorContexts.get(res) });
  });
  return Object.assign(router, {
    issue,
    verifyDPoP,
    dpopAlgorithms: dpop?.verifier.algorithms,
  }) as RefreshRouter;
}
