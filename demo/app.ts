/**
 * The demo app (docs/express.md, "The demo app"): register, login, password change, `/me`,
 * the token router at `/auth`, health and readiness, helmet, rate limits and request logs without
 * secrets. Built from explicit dependencies so the tests, `npm start`, `npm run demo` and docker
 * compose share it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import bcrypt from 'bcrypt';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { rateLimit, type Store } from 'express-rate-limit';
import helmet from 'helmet';
import type * as Esbuild from 'esbuild';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import {
  asyncHandler,
  authenticate,
  authorizationServerMetadata,
  createRefreshRouter,
  errorHandler,
  setNoStore,
  type CookieTransportOptions,
} from 'refresh-rotation/express';
import type { RefreshMetrics } from 'refresh-rotation/metrics';
import { InvalidGrantError, type DPoPReplayCache, type RotationService } from 'refresh-rotation';
import { queueDashboard, type DashboardQueue } from './dashboard';
import { EmailTakenError, normaliseEmail, type UserStore } from './users';

/** The app's rate limiters, each with its own counters (and its own store when one is given). */
export type RateLimitName = 'credential-ip' | 'login-account' | 'password-account' | 'token-ip';

export interface AppConfig {
  service: RotationService;
  users: UserStore;
  logger: Logger;
  /** Cookie transport for browsers (the static page uses it); false for bodies only. */
  cookie: false | CookieTransportOptions;
  rateLimit: {
    /** Requests per client IP and minute to the routes that check a password (register, login, password change). */
    loginPerMinute: number;
    /** Failed password checks per account and hour: login per email, password change per user id. */
    accountPerHour: number;
    /** Requests per client IP and minute to `POST /auth/token`. */
    tokenPerMinute: number;
    /**
     * Where counts are kept, called once per limiter with its name (give each its own key prefix).
     * Default: this process's memory, which is right for one instance only; with several
     * instances use a shared store such as `rate-limit-redis`.
     */
    store?: (name: RateLimitName) => Store;
  };
  /**
   * The OAuth issuer identifier published at `/.well-known/oauth-authorization-server` (RFC 8414):
   * an https URL (http for localhost). The runtime passes `ACCESS_TOKEN_ISSUER` when it is a URL,
   * else `http://localhost:<PORT>`. Default: no metadata.
   */
  issuer?: string;
  /**
   * DPoP (RFC 9449) on `/auth/token`, the login and the access-token routes: `publicUrl` is the
   * origin clients call the app at (proofs name it), `replayCache` where each proof is claimed
   * once. Bearer clients are unaffected. Default off.
   */
  dpop?: { publicUrl: string; replayCache: DPoPReplayCache };
  /** Resolves when the stores answer; rejects otherwise (`/readyz`). */
  ready: () => Promise<void>;
  /** bcrypt cost. Default 12; tests use 4. */
  bcryptRounds?: number;
  /** Serve the static demo page from demo/public. Default true. */
  serveStaticPage?: boolean;
  /**
   * The browser module the page imports from {@link CLIENT_MODULE_URL}, as a file. Default
   * {@link shippedClientModule} (tests that must not race a rebuild of dist/ pass their own build).
   */
  clientModule?: string;
  /** Served at `GET /metrics` (Prometheus text format). Default: no `/metrics`. */
  metrics?: RefreshMetrics;
  /**
   * The BullMQ dashboard at `/admin/queues`, for these user ids only, with an access token checked
   * against revocation. Default (or an empty list): not mounted, so `/admin/queues` is a 404.
   */
  admin?: { userIds: readonly string[]; queues: readonly DashboardQueue[] };
}

const MIN_PASSWORD_LENGTH = 8;
/**
 * bcrypt ignores everything after 72 bytes, so a longer password would be accepted with any
 * suffix. Every route refuses longer passwords (register, login, both fields of the password
 * change) with the same 400, rather than pre-hashing them: one rule, and no hash format to migrate.
 */
const MAX_PASSWORD_BYTES = 72;
/** Looked up (and compared against the dummy hash) when the email is unknown, so a login does the same work. */
const NO_SUCH_USER = '00000000-0000-7000-8000-000000000000';
/** What `POST /auth/register` answers, whether or not the email already had an account. */
const REGISTER_ACCEPTED = {
  status: 'accepted',
  message: 'If this email can be registered, the account is ready: log in with your password.',
};
const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,189}\.[^\s@]{1,63}$/;

function badRequest(res: Response, description: string): void {
  res.status(400).json({ error: 'invalid_request', error_description: description });
}

function stringField(body: unknown, name: string): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const value = (body as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
}

function tooLong(password: string, name = 'password'): string | null {
  return Buffer.byteLength(password) > MAX_PASSWORD_BYTES
    ? `${name} must be at most ${MAX_PASSWORD_BYTES} bytes.`
    : null;
}

function passwordProblem(password: string | undefined, name = 'password'): string | null {
  if (password === undefined) return `${name} is required.`;
  if (password.length < MIN_PASSWORD_LENGTH)
    return `${name} must have at least ${MIN_PASSWORD_LENGTH} characters.`;
  return tooLong(password, name);
}

interface LimiterSettings {
  name: RateLimitName;
  limit: number;
  windowMs: number;
  store: AppConfig['rateLimit']['store'];
  /** Default: the client IP (IPv6 by /56 subnet, express-rate-limit's default). */
  key?: (req: Request) => string;
  /** Count only failures (status >= 400): a user who logs in often is never limited. */
  failuresOnly?: boolean;
}

function limiter(settings: LimiterSettings) {
  const { key, store } = settings;
  return rateLimit({
    windowMs: settings.windowMs,
    limit: settings.limit,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    skipSuccessfulRequests: settings.failuresOnly ?? false,
    ...(key ? { keyGenerator: key } : {}),
    ...(store ? { store: store(settings.name) } : {}),
    handler(_req, res) {
      setNoStore(res);
      res
        .status(429)
        .json({ error: 'rate_limited', error_description: 'Too many requests; retry later.' });
    },
  });
}

const TOKEN_PARAMETER = /^(?:refresh_token|access_token|token)(?:\[.*\])?$/i;
/** A refresh token (its scanner prefix) or a JWT, whatever the parameter is called. */
const TOKEN_VALUE = /^(?:rt_|eyJ[\w-]*\.)/;

function decodedOrRaw(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}

/**
 * The URL with the value of every token-looking query parameter replaced by `[REDACTED]`. The app
 * never reads a token from a URL, but a client that wrongly puts one there must not have it
 * written to the log (and on to wherever logs go).
 */
export function redactUrl(url: string): string {
  const start = url.indexOf('?');
  if (start === -1) return url;
  const query = url
    .slice(start + 1)
    .split('&')
    .map((pair) => {
      const equals = pair.indexOf('=');
      if (equals === -1) return pair;
      const name = decodedOrRaw(pair.slice(0, equals));
      const value = decodedOrRaw(pair.slice(equals + 1));
      return TOKEN_PARAMETER.test(name.trim()) || TOKEN_VALUE.test(value.trim())
        ? `${pair.slice(0, equals)}=[REDACTED]`
        : pair;
    });
  return `${url.slice(0, start)}?${query.join('&')}`;
}

function requestLogger(logger: Logger) {
  return pinoHttp({
    logger,
    // Whitelist what a request line says: no headers (Authorization, Cookie), no bodies, no
    // Set-Cookie, and the URL without token-looking query parameters.
    serializers: {
      req: (req: { id: unknown; method: string; url: string; remoteAddress?: string }) => ({
        id: req.id,
        method: req.method,
        url: redactUrl(req.url),
        remoteAddress: req.remoteAddress,
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
    customLogLevel: (_req, res, error) =>
      error || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
  });
}

/**
 * helmet's defaults, except on a deployment served over plain http (`COOKIE_SECURE=false`): there
 * the CSP's `upgrade-insecure-requests` would send the page's own script and stylesheet to https
 * (where nothing answers) and HSTS means nothing, so both are off. localhost needs neither change.
 */
function plainHttpHeaders(cookie: AppConfig['cookie']): Parameters<typeof helmet>[0] {
  if (cookie === false || cookie.secure !== false) return undefined;
  return {
    strictTransportSecurity: false,
    contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
  };
}

/** Where the page imports `refresh-rotation/client` from (demo/public/app.js). */
export const CLIENT_MODULE_URL = '/refresh-rotation-client.mjs';

/**
 * `refresh-rotation/client` as the package ships it: the ES module its `exports` name, found
 * through the package's own package.json (Node resolves a package's own name from inside it), in
 * dist/ after `npm run build`. The page runs this file, so the demo has no refresh logic of its own.
 */
export function shippedClientModule(): string {
  const manifestFile = require.resolve('refresh-rotation/package.json');
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as {
    exports: { './client': { import: { default: string } } };
  };
  return join(dirname(manifestFile), manifest.exports['./client'].import.default);
}

/**
 * In a fresh clone (`npm run demo` before any `npm run build`): the same module built in memory
 * from src/client with esbuild, as tsup builds it for dist/, so the page still runs the shipped
 * code. Null where esbuild is not installed (the image, which has dist/).
 */
function clientModuleFromSource(): string | null {
  try {
    const esbuild = createRequire(__filename)('esbuild') as typeof Esbuild;
    const built = esbuild.buildSync({
      entryPoints: [join(__dirname, '..', 'src', 'client', 'index.ts')],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2020',
      write: false,
      logLevel: 'silent',
    });
    return built.outputFiles[0]!.text;
  } catch {
    return null;
  }
}

/** Serves the browser module; resolved at the first request, so an app that never serves the page needs no build. */
function clientModuleHandler(file: string | undefined) {
  let resolved = file;
  let fromSource: string | null | undefined;
  return (_req: Request, res: Response): void => {
    resolved ??= shippedClientModule();
    if (existsSync(resolved)) {
      res.type('text/javascript').sendFile(resolved);
      return;
    }
    fromSource ??= clientModuleFromSource();
    if (fromSource !== null) {
      res.type('text/javascript').send(fromSource);
      return;
    }
    res.status(404).json({
      error: 'not_built',
      error_description: `${resolved} does not exist: run \`npm run build\` (the page imports the built refresh-rotation/client)`,
    });
  };
}

/** Build the demo app. Listening and closing the stores is the caller's business. */
/** 403 unless the authenticated user is one of `admins`. Runs after `authenticate`. */
function adminGuard(admins: ReadonlySet<string>) {
  return (req: Request, res: Response, next: () => void): void => {
    if (req.auth && admins.has(req.auth.userId)) {
      next();
      return;
    }
    setNoStore(res);
    res.status(403).json({ error: 'forbidden', error_description: 'administrators only' });
  };
}

export function createApp(config: AppConfig): Express {
  const { service, users, logger } = config;
  const rounds = config.bcryptRounds ?? 12;
  // Compared against when the email is unknown, so a login takes as long either way.
  const dummyHash = bcrypt.hashSync('not-a-real-password', rounds);
  const dpop = config.dpop && {
    router: {
      tokenEndpointUrl: `${config.dpop.publicUrl}/auth/token`,
      replayCache: config.dpop.replayCache,
    },
    resource: { publicOrigin: config.dpop.publicUrl, replayCache: config.dpop.replayCache },
  };
  const auth = createRefreshRouter({ service, cookie: config.cookie, logger, dpop: dpop?.router });
  const requireUser = authenticate({ service, trackActivity: true, logger, dpop: dpop?.resource });
  // Changing the password is a takeover if a stolen token can do it: refuse signed-out sessions too.
  const requireCurrentUser = authenticate({
    service,
    checkRevocation: { sessions: true },
    logger,
    dpop: dpop?.resource,
  });
  const metadata =
    config.issuer === undefined
      ? null
      : authorizationServerMetadata({
          issuer: config.issuer,
          tokenEndpoint: '/auth/token',
          revocationEndpoint: '/auth/revoke',
          dpopSigningAlgorithms: auth.dpopAlgorithms,
        });
  const json = express.json({ limit: '4kb' });
  const limits = config.rateLimit;
  const credentialLimit = limiter({
    name: 'credential-ip',
    limit: limits.loginPerMinute,
    windowMs: 60_000,
    store: limits.store,
  });
  // Per account, so guessing one account's password from many IPs is bounded too. Keyed by what
  // the client sent (normalised), known account or not, so the limit reveals nothing.
  const loginAccountLimit = limiter({
    name: 'login-account',
    limit: limits.accountPerHour,
    windowMs: 3_600_000,
    store: limits.store,
    failuresOnly: true,
    key: (req) => `email:${normaliseEmail(stringField(req.body, 'email') ?? '')}`,
  });
  const passwordAccountLimit = limiter({
    name: 'password-account',
    limit: limits.accountPerHour,
    windowMs: 3_600_000,
    store: limits.store,
    failuresOnly: true,
    key: (req) => `user:${req.auth!.userId}`,
  });
  const tokenLimit = limiter({
    name: 'token-ip',
    limit: limits.tokenPerMinute,
    windowMs: 60_000,
    store: limits.store,
  });

  function refuseLogin(res: Response): void {
    setNoStore(res);
    res.status(401).json({ error: 'invalid_credentials' });
  }

  // Same status, body and work (one bcrypt hash, one insert attempt) whether or not the email
  // already has an account, so registering cannot be used to test emails. A real app would now
  // send a mail: "confirm your account" to a new address, "someone tried to register with your
  // address" to a known one. docs/security.md says what this does not hide.
  async function register(req: Request, res: Response): Promise<void> {
    const email = stringField(req.body, 'email')?.trim();
    const password = stringField(req.body, 'password');
    if (!email || email.length > 254 || !EMAIL.test(email))
      return badRequest(res, 'email is invalid.');
    const problem = passwordProblem(password);
    if (problem) return badRequest(res, problem);
    try {
      await users.create({ email, passwordHash: await bcrypt.hash(password!, rounds) });
    } catch (error) {
      if (!(error instanceof EmailTakenError)) throw error;
    }
    setNoStore(res);
    res.status(202).json(REGISTER_ACCEPTED);
  }

  async function login(req: Request, res: Response): Promise<void> {
    const email = stringField(req.body, 'email');
    const password = stringField(req.body, 'password');
    if (email === undefined || password === undefined)
      return badRequest(res, 'email and password are required.');
    const problem = tooLong(password);
    if (problem) return badRequest(res, problem);
    // Before the password check, so a refused proof costs no hash.
    const proof = await auth.verifyDPoP(req);
    const found = await users.findByEmail(email);
    const id = found?.id ?? NO_SUCH_USER;
    // docs/architecture.md, "Revocation and versions": the version snapshot is taken before the
    // password hash is read. A password change stores the new hash and then revokes every session
    // (a version bump), so a login that still reads the old hash took its snapshot below the new
    // minimum and gets no session.
    const snapshot = await service.versionSnapshot(id);
    const user = await users.findById(id);
    const matches = await bcrypt.compare(password, user?.passwordHash ?? dummyHash);
    if (!found || !user || !matches) return refuseLogin(res);
    const body = await auth
      .issue(res, { userId: user.id, at: snapshot, dpop: proof })
      .catch((error) => {
        // A revoke-all landed during the check: the password checked may be the one it replaced.
        if (error instanceof InvalidGrantError) return null;
        throw error;
      });
    if (!body) return refuseLogin(res);
    res.status(200).json(body);
  }

  async function changePassword(req: Request, res: Response): Promise<void> {
    const current = stringField(req.body, 'currentPassword');
    const next = stringField(req.body, 'newPassword');
    if (current === undefined) return badRequest(res, 'currentPassword is required.');
    const problem = tooLong(current, 'currentPassword') ?? passwordProblem(next, 'newPassword');
    if (problem) return badRequest(res, problem);
    const user = await users.findById(req.auth!.userId);
    if (!user || !(await bcrypt.compare(current, user.passwordHash))) {
      res.status(403).json({ error: 'invalid_credentials' });
      return;
    }
    // In this order: the new hash first, then the version bump. A login that read the old hash
    // then read it before the bump, and its version snapshot (taken earlier) is below the new
    // minimum. The other way round, a login could snapshot after the bump and still read the old hash.
    await users.setPasswordHash(user.id, await bcrypt.hash(next!, rounds));
    // Every session of the user dies at once (version bump); the records are revoked by the job.
    await service.revokeAllForUser(user.id, 'password_changed');
    res.status(204).end();
  }

  async function me(req: Request, res: Response): Promise<void> {
    setNoStore(res);
    const user = await users.findById(req.auth!.userId);
    if (!user) {
      res.status(404).json({ error: 'not_found' });
      return;
    }
    res.json({ id: user.id, email: user.email });
  }

  async function readiness(_req: Request, res: Response): Promise<void> {
    try {
      await config.ready();
      res.json({ status: 'ready' });
    } catch {
      res.status(503).json({ status: 'unavailable' });
    }
  }

  const accounts = express.Router();
  // Credentials and tokens pass through these answers, refusals included: no cache may keep one.
  accounts.use((_req: Request, res: Response, next: NextFunction) => {
    res.set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' });
    next();
  });
  accounts.post('/register', credentialLimit, json, asyncHandler(register));
  accounts.post('/login', credentialLimit, json, loginAccountLimit, asyncHandler(login));
  accounts.post(
    '/password',
    credentialLimit,
    requireCurrentUser,
    passwordAccountLimit,
    json,
    asyncHandler(changePassword),
  );

  const app = express();
  app.disable('x-powered-by');
  app.use(helmet(plainHttpHeaders(config.cookie)));
  app.use(requestLogger(logger));
  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  app.get('/readyz', asyncHandler(readiness));
  if (metadata) app.get(metadata.path, metadata.handler);
  const metrics = config.metrics;
  if (metrics) {
    app.get(
      '/metrics',
      asyncHandler(async (_req, res) => {
        const { contentType, body } = await metrics.scrape();
        res.set('cache-control', 'no-store').type(contentType).send(body);
      }),
    );
  }
  if (config.admin && config.admin.userIds.length > 0) {
    const dashboard = queueDashboard('/admin/queues', config.admin.queues);
    const requireAdmin = adminGuard(new Set(config.admin.userIds));
    app.use('/admin/queues', tokenLimit, requireCurrentUser, requireAdmin, dashboard);
  }
  app.use('/auth/token', tokenLimit);
  app.use('/auth/revoke', tokenLimit);
  app.use('/auth', accounts);
  app.use('/auth', auth);
  app.get('/me', requireUser, asyncHandler(me));
  if (config.serveStaticPage ?? true) {
    app.get(CLIENT_MODULE_URL, clientModuleHandler(config.clientModule));
    app.use(express.static(join(__dirname, 'public')));
  }
  app.use((_req, res) => void res.status(404).json({ error: 'not_found' }));
  app.use(errorHandler({ logger }));
  return app;
}
