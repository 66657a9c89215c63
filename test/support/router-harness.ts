/**
 * The library's router harness: `createRefreshRouter` mounted at `/auth` of a bare `express()`,
 * wired the way docs/express.md tells an app to wire it, and nothing else: no example app, no
 * bcrypt, no rate limits, no environment. On the in-memory adapters with inline jobs (no server:
 * `*.unit.test.ts` suites use it); `router-stores.ts` builds the same app on the MongoDB-wire server
 * with BullMQ and a worker.
 *
 * The app it builds:
 * - `/auth/*`: the router (`POST /token`, `/logout`, `/revoke`, `/logout-all`, `GET /sessions`,
 *   `DELETE /sessions/:id`).
 * - `POST /auth/login` with `{ "userId": "…" }`: the app's own login route reduced to what the
 *   library does in it, `router.issue(res, { userId, at })` with the version snapshot taken first.
 *   Checking a password is the app's business, so there is none.
 * - `GET /api/whoami`: a route behind `authenticate({ service })` with its defaults (signature and
 *   expiry only), answering `{ userId, sessionId }`.
 * - `errorHandler()` for the app's own routes.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import express, { type Express } from 'express';
import request from 'supertest';
import {
  authenticate,
  createRefreshRouter,
  errorHandler,
  type AdapterLogger,
  type RefreshRouter,
  type RefreshRouterOptions,
  type TokenResponseBody,
} from '../../src/adapters/express';
import {
  InlineTokenJobs,
  MemoryRefreshTokenRepository,
  MemoryVersionStore,
} from '../../src/adapters/memory';
import type { RefreshTokenRepository } from '../../src/domain/refresh-token-repository';
import type { TokenJobs } from '../../src/domain/token-jobs';
import type { VersionStore } from '../../src/domain/version-store';
import type { AuditEvent, RefreshRotationOptions } from '../../src/options';
import { RotationService } from '../../src/rotation-service';
import { ShiftedClock } from './fake-clock';
import { HttpClient } from './http-client';
import { ACCESS_SECRET, REFRESH_SECRET } from './secrets';

/** The header a client sends to get the refresh token as a cookie (the router's default). */
export const COOKIE_OPT_IN = { 'X-Token-Transport': 'cookie' } as const;

export interface RouterOptions {
  /** The router's `cookie` option. Default `true` (the transport on, its defaults). */
  cookie?: RefreshRouterOptions['cookie'];
  /** The router's other options (`checkRevocation`, `bodyLimit`, `retryAfterSeconds`). */
  router?: Omit<RefreshRouterOptions, 'service' | 'cookie' | 'logger'>;
  /** On top of the service options the harness sets (stores, secrets, clock, audit sink). */
  service?: Partial<RefreshRotationOptions>;
}

/** The stores a harness runs on (the in-memory ones unless `router-stores.ts` gives others). */
export interface RouterStores {
  name: string;
  repository: RefreshTokenRepository;
  versions: VersionStore;
  jobs: TokenJobs;
  close(): Promise<void>;
}

/** One line the router or the app's error handler logged. */
export interface LoggedLine {
  level: 'error' | 'warn';
  object: object;
  message: string | undefined;
}

export interface RouterHarness {
  /** Which stores it runs on, for test titles. */
  name: string;
  app: Express;
  router: RefreshRouter;
  service: RotationService;
  repository: RefreshTokenRepository;
  clock: ShiftedClock;
  /** Every audit event the service emitted. */
  audit: AuditEvent[];
  /** Every line logged through the harness's logger (the router's and the error handler's). */
  logged: LoggedLine[];
  /**
   * `POST /auth/login` for `userId` (default: a fresh one); 200 expected. `headers` ask for the
   * cookie ({@link COOKIE_OPT_IN}) or set Host, Origin…; the whole answer is returned.
   */
  login(userId?: string, headers?: Record<string, string>): Promise<request.Response>;
  /** `login()`'s body, for a body client. */
  tokens(userId?: string): Promise<TokenResponseBody>;
  /**
   * Listen on 127.0.0.1 (a free port) and return a plain HTTP/1.1 client to it, for requests
   * supertest would rewrite (raw paths); closed by `close()`.
   */
  listen(): Promise<HttpClient>;
  /** Close the listening server, if any, and the stores. Idempotent. */
  close(): Promise<void>;
}

/** The in-memory adapters with inline jobs. */
export function memoryStores(): RouterStores {
  const repository = new MemoryRefreshTokenRepository();
  return {
    name: 'the in-memory adapters with inline jobs',
    repository,
    versions: new MemoryVersionStore(),
    jobs: new InlineTokenJobs(repository),
    close: async () => undefined,
  };
}

/** A fresh user id. */
export function aUserId(): string {
  return `user-${randomUUID()}`;
}

/** The router and its app on `stores` (default: the in-memory adapters). */
export function routerHarness(
  options: RouterOptions = {},
  stores: RouterStores = memoryStores(),
  clock = new ShiftedClock(),
): RouterHarness {
  const audit: AuditEvent[] = [];
  const logged: LoggedLine[] = [];
  const logger: AdapterLogger = {
    error: (object, message) => void logged.push({ level: 'error', object, message }),
    warn: (object, message) => void logged.push({ level: 'warn', object, message }),
  };
  const { onAuditEvent, ...serviceOptions } = options.service ?? {};
  const service = new RotationService({
    repository: stores.repository,
    versions: stores.versions,
    jobs: stores.jobs,
    clock,
    accessToken: { secret: ACCESS_SECRET },
    refreshToken: { secrets: [REFRESH_SECRET] },
    revocationCache: { ttl: 0 },
    ...serviceOptions,
    onAuditEvent: (event) => {
      audit.push(event);
      onAuditEvent?.(event);
    },
  });
  const router = createRefreshRouter({
    ...options.router,
    service,
    cookie: options.cookie ?? true,
    logger,
  });

  const accounts = express.Router();
  accounts.post('/login', express.json(), (req, res, next) => {
    const userId = (req.body as { userId?: unknown } | undefined)?.userId;
    if (typeof userId !== 'string' || userId === '') {
      res.status(400).json({ error: 'invalid_request', error_description: 'userId is required.' });
      return;
    }
    service
      .versionSnapshot(userId)
      .then((at) => router.issue(res, { userId, at }))
      .then((body) => void res.status(200).json(body), next);
  });
  const app = express();
  app.use('/auth', accounts);
  app.use('/auth', router);
  app.get('/api/whoami', authenticate({ service, logger }), (req, res) => {
    res.json({ userId: req.auth!.userId, sessionId: req.auth!.sessionId });
  });
  app.use(errorHandler({ logger }));

  async function login(userId = aUserId(), headers: Record<string, string> = {}) {
    const response = await request(app).post('/auth/login').set(headers).send({ userId });
    if (response.status !== 200)
      throw new Error(`login answered ${response.status}: ${response.text}`);
    return response;
  }

  const servers: Array<() => Promise<void>> = [];
  async function listen(): Promise<HttpClient> {
    const server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    const http = new HttpClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    servers.push(async () => {
      http.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    return http;
  }

  let closing: Promise<void> | undefined;
  return {
    name: stores.name,
    app,
    router,
    service,
    repository: stores.repository,
    clock,
    audit,
    logged,
    login,
    tokens: async (userId) => (await login(userId)).body as TokenResponseBody,
    listen,
    close: () =>
      (closing ??= (async () => {
        for (const close of servers.splice(0)) await close();
        await stores.close();
      })()),
  };
}

/** POST /auth/token with an RFC 6749 §6 form body. */
export function refreshForm(app: Express, refreshToken: string) {
  return request(app)
    .post('/auth/token')
    .type('form')
    .send({ grant_type: 'refresh_token', refresh_token: refreshToken });
}

/** POST /auth/token with a JSON body. */
export function refreshJson(app: Express, refreshToken: string) {
  return request(app).post('/auth/token').send({ refresh_token: refreshToken });
}

/** `Authorization: Bearer <access token>`. */
export function bearer(tokens: { access_token: string }): string {
  return `Bearer ${tokens.access_token}`;
}

/**
 * Start a harness in `beforeAll` and close it in `afterAll`. Returns a stand-in whose properties
 * are the started harness's: read them inside hooks and tests, not while the `describe` body runs.
 */
export function useRouter(start: () => RouterHarness | Promise<RouterHarness>): RouterHarness {
  let started: RouterHarness | undefined;
  beforeAll(async () => {
    started = await start();
  });
  afterAll(async () => {
    await started?.close();
  });
  return new Proxy({} as RouterHarness, {
    get(_target, property) {
      if (!started) throw new Error('useRouter: not started yet (read it inside a test)');
      return Reflect.get(started, property, started);
    },
  });
}
