/**
 * The example app (DESIGN §6): register, login, password change, `/me`, the token router at
 * `/auth`, health and readiness, helmet, rate limits and request logs without secrets. Built from
 * explicit dependencies so the tests, `npm start`, `npm run demo` and docker compose share it.
 */
import { join } from 'node:path';
import bcrypt from 'bcrypt';
import express, { type Express, type Request, type Response } from 'express';
import { rateLimit, type Store } from 'express-rate-limit';
import helmet from 'helmet';
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
} from '../src/adapters/express';
import type { RotationService } from '../src/rotation-service';
import { EmailTakenError, type UserStore } from './users';

export interface AppConfig {
  service: RotationService;
  users: UserStore;
  logger: Logger;
  /** Cookie transport for browsers (the static page uses it); false for bodies only. */
  cookie: false | CookieTransportOptions;
  rateLimit: {
    loginPerMinute: number;
    tokenPerMinute: number;
    /**
     * Where counts are kept. Default: this process's memory, which is right for one instance
     * only; with several instances use a shared store such as `rate-limit-redis`.
     */
    store?: () => Store;
  };
  /**
   * The OAuth issuer identifier published at `/.well-known/oauth-authorization-server` (RFC 8414):
   * an https URL (http for localhost). The runtime passes `ACCESS_TOKEN_ISSUER` when it is a URL,
   * else `http://localhost:<PORT>`. Default: no metadata.
   */
  issuer?: string;
  /** Resolves when the stores answer; rejects otherwise (`/readyz`). */
  ready: () => Promise<void>;
  /** bcrypt cost. Default 12; tests use 4. */
  bcryptRounds?: number;
  /** Serve the static demo page from examples/public. Default true. */
  serveStaticPage?: boolean;
}

const MIN_PASSWORD_LENGTH = 8;
/** bcrypt ignores everything after 72 bytes: refuse longer passwords instead of truncating them. */
const MAX_PASSWORD_BYTES = 72;
const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,189}\.[^\s@]{1,63}$/;

function badRequest(res: Response, description: string): void {
  res.status(400).json({ error: 'invalid_request', error_description: description });
}

function stringField(body: unknown, name: string): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const value = (body as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
}

function passwordProblem(password: string | undefined): string | null {
  if (password === undefined) return 'password is required.';
  if (password.length < MIN_PASSWORD_LENGTH)
    return `password must have at least ${MIN_PASSWORD_LENGTH} characters.`;
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES)
    return `password must be at most ${MAX_PASSWORD_BYTES} bytes.`;
  return null;
}

function limiter(perMinute: number, store: AppConfig['rateLimit']['store']) {
  return rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    ...(store ? { store: store() } : {}),
    handler(_req, res) {
      setNoStore(res);
      res
        .status(429)
        .json({ error: 'rate_limited', error_description: 'Too many requests; retry later.' });
    },
  });
}

function requestLogger(logger: Logger) {
  return pinoHttp({
    logger,
    // Whitelist what a request line says: no headers (Authorization, Cookie), no bodies, no
    // Set-Cookie. Tokens never appear in URLs, so the URL is safe to log.
    serializers: {
      req: (req: { id: unknown; method: string; url: string; remoteAddress?: string }) => ({
        id: req.id,
        method: req.method,
        url: req.url,
        remoteAddress: req.remoteAddress,
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
    customLogLevel: (_req, res, error) =>
      error || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
  });
}

/** Build the example app. Listening and closing the stores is the caller's business. */
export function createApp(config: AppConfig): Express {
  const { service, users, logger } = config;
  const rounds = config.bcryptRounds ?? 12;
  // Compared against when the email is unknown, so a login takes as long either way.
  const dummyHash = bcrypt.hashSync('not-a-real-password', rounds);
  const auth = createRefreshRouter({ service, cookie: config.cookie, logger });
  const requireUser = authenticate({ service, trackActivity: true, logger });
  // Changing the password is a takeover if a stolen token can do it: refuse signed-out sessions too.
  const requireCurrentUser = authenticate({
    service,
    checkRevocation: { sessions: true },
    logger,
  });
  const metadata =
    config.issuer === undefined
      ? null
      : authorizationServerMetadata({
          issuer: config.issuer,
          tokenEndpoint: '/auth/token',
          revocationEndpoint: '/auth/revoke',
        });
  const json = express.json({ limit: '4kb' });
  const loginLimit = limiter(config.rateLimit.loginPerMinute, config.rateLimit.store);
  const tokenLimit = limiter(config.rateLimit.tokenPerMinute, config.rateLimit.store);

  async function register(req: Request, res: Response): Promise<void> {
    const email = stringField(req.body, 'email')?.trim();
    const password = stringField(req.body, 'password');
    if (!email || email.length > 254 || !EMAIL.test(email))
      return badRequest(res, 'email is invalid.');
    const problem = passwordProblem(password);
    if (problem) return badRequest(res, problem);
    try {
      const user = await users.create({
        email,
        passwordHash: await bcrypt.hash(password!, rounds),
      });
      res.status(201).json({ id: user.id, email: user.email });
    } catch (error) {
      if (!(error instanceof EmailTakenError)) throw error;
      res
        .status(409)
        .json({ error: 'email_taken', error_description: 'This email is already registered.' });
    }
  }

  async function login(req: Request, res: Response): Promise<void> {
    const email = stringField(req.body, 'email');
    const password = stringField(req.body, 'password');
    if (email === undefined || password === undefined)
      return badRequest(res, 'email and password are required.');
    const user = await users.findByEmail(email);
    const matches = await bcrypt.compare(password, user?.passwordHash ?? dummyHash);
    if (!user || !matches) {
      setNoStore(res);
      res.status(401).json({ error: 'invalid_credentials' });
      return;
    }
    res.status(200).json(await auth.issue(res, { userId: user.id }));
  }

  async function changePassword(req: Request, res: Response): Promise<void> {
    const current = stringField(req.body, 'currentPassword');
    const next = stringField(req.body, 'newPassword');
    if (current === undefined) return badRequest(res, 'currentPassword is required.');
    const problem = passwordProblem(next);
    if (problem) return badRequest(res, problem.replace('password', 'newPassword'));
    const user = await users.findById(req.auth!.userId);
    if (!user || !(await bcrypt.compare(current, user.passwordHash))) {
      res.status(403).json({ error: 'invalid_credentials' });
      return;
    }
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
  accounts.post('/register', loginLimit, json, asyncHandler(register));
  accounts.post('/login', loginLimit, json, asyncHandler(login));
  accounts.post('/password', requireCurrentUser, json, asyncHandler(changePassword));

  const app = express();
  app.disable('x-powered-by');
  app.use(helmet());
  app.use(requestLogger(logger));
  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  app.get('/readyz', asyncHandler(readiness));
  if (metadata) app.get(metadata.path, metadata.handler);
  app.use('/auth/token', tokenLimit);
  app.use('/auth/revoke', tokenLimit);
  app.use('/auth', accounts);
  app.use('/auth', auth);
  app.get('/me', requireUser, asyncHandler(me));
  if (config.serveStaticPage ?? true) app.use(express.static(join(__dirname, 'public')));
  app.use((_req, res) => void res.status(404).json({ error: 'not_found' }));
  app.use(errorHandler({ logger }));
  return app;
}
