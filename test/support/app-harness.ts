/**
 * The one app harness of the tests: the example app built the way `npm start` and `npm run demo`
 * build it (from an environment, through demo/runtime.ts), listening on 127.0.0.1, either on
 * the in-memory adapters with inline jobs or on a MongoDB-wire server (a fresh database) with
 * BullMQ jobs on Redis and a real worker (src/adapters/bullmq-worker/token-workers.ts) in this process. It records
 * every audit event and log line, and closes everything it opened. Plus the supertest helpers the
 * HTTP tests share.
 */
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { Express } from 'express';
import { Redis } from 'ioredis';
import mongoose, { type Connection } from 'mongoose';
import { pino, type Logger } from 'pino';
import request from 'supertest';
import { loadEnv, type RawEnv } from '../../demo/env';
import { createRuntime, type Runtime, type RuntimeOverrides } from '../../demo/runtime';
import { MongooseRefreshTokenRepository } from '../../src/adapters/mongoose';
import type { RefreshTokenRepository } from '../../src/domain/refresh-token-repository';
import type { AuditEvent } from '../../src/options';
import {
  DEFAULT_CLEANUP,
  startTokenWorkers,
  type TokenWorkers,
} from '../../src/adapters/bullmq-worker';
import { ShiftedClock } from './fake-clock';
import { HttpClient } from './http-client';
import { ACCESS_SECRET, REFRESH_SECRET } from './secrets';
import { mongoUri, redisUrl, uniqueName } from './services';

export { ACCESS_SECRET, REFRESH_SECRET, ShiftedClock };

export const PASSWORD = 'correct horse battery staple';

/** The example app's environment for tests: fixed secrets, cookie transport on, rate limits out of the way. */
export function appEnvironment(extra: RawEnv = {}): RawEnv {
  return {
    NODE_ENV: 'test',
    ACCESS_TOKEN_SECRET: ACCESS_SECRET,
    REFRESH_TOKEN_SECRETS: REFRESH_SECRET,
    COOKIE_TRANSPORT: 'true',
    RATE_LIMIT_LOGIN_PER_MINUTE: '1000000',
    RATE_LIMIT_ACCOUNT_PER_HOUR: '1000000',
    RATE_LIMIT_TOKEN_PER_MINUTE: '1000000',
    LOG_LEVEL: 'silent',
    TOUCH_WINDOW: '1s',
    ...extra,
  };
}

export const silentLogger = pino({ level: 'silent' });

/** Collects every line a pino logger writes, as text (so a scan sees exactly what would reach a log file). */
export class LogCapture {
  readonly lines: string[] = [];
  readonly logger: Logger;

  constructor(level: pino.LevelWithSilent = 'info') {
    const lines = this.lines;
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    this.logger = pino({ level }, sink);
  }

  text(): string {
    return this.lines.join('');
  }
}

export interface AppOptions {
  /**
   * mongodb:// URL of a MongoDB-wire server (no database: the app gets a fresh one). Without it,
   * the app runs on the in-memory adapters with inline jobs (`npm run demo` without services).
   */
  mongoUrl?: string;
  /** redis:// URL (with `mongoUrl`): jobs go to BullMQ there. Without it, jobs are inline. */
  redisUrl?: string;
  /** Start a worker in this process on the queue. Default true when `redisUrl` is set. */
  worker?: boolean;
  /** Environment on top of `appEnvironment()`. */
  env?: RawEnv;
  /** Level of the captured logs (`logs`) and of the app's LOG_LEVEL. Default `silent`. */
  logLevel?: pino.LevelWithSilent;
  /** Runtime overrides; `bcryptRounds` defaults to 4, `revocationCacheTtlMs` to 0 (every check reads the store). */
  overrides?: RuntimeOverrides;
}

export interface TestApp {
  /** Which stores the app runs on, for test titles. */
  name: string;
  runtime: Runtime;
  app: Express;
  clock: ShiftedClock;
  /** Every audit event the app emitted. */
  audit: AuditEvent[];
  logs: LogCapture;
  /** http://127.0.0.1:<port> */
  base: string;
  /** Plain HTTP/1.1 to the app. */
  http: HttpClient;
  /**
   * The session store as a test reads it: on MongoDB a repository on the test's own connection,
   * in memory the app's own.
   */
  repository: RefreshTokenRepository;
  /** The worker started with the app, if any. */
  workers: TokenWorkers | null;
  /** The app's database, its BullMQ prefix and the test's own connection to it (MongoDB only; throw otherwise). */
  readonly dbName: string;
  readonly prefix: string;
  readonly db: Connection;
  /**
   * Another instance of the same app (same environment, stores and queue; not listening), as a
   * second server behind a load balancer; `overrides` on top of the app's. Closed with the app.
   */
  anotherInstance(overrides?: RuntimeOverrides): Promise<Runtime>;
  /** Stop the worker, the server, the app and the connections; drop the database. Idempotent. */
  close(options?: { keepDatabase?: boolean }): Promise<void>;
}

function onlyWith<T>(value: T | null, what: string): T {
  if (value === null) throw new Error(`startApp: ${what}`);
  return value;
}

/** Build the example app from its environment, listen on 127.0.0.1, and (with Redis) start a worker. */
export async function startApp(options: AppOptions = {}): Promise<TestApp> {
  const { mongoUrl, redisUrl, logLevel = 'silent' } = options;
  if (redisUrl !== undefined && mongoUrl === undefined)
    throw new Error('startApp: redisUrl needs mongoUrl (the in-memory app runs its jobs inline)');
  const clock = new ShiftedClock();
  const audit: AuditEvent[] = [];
  const logs = new LogCapture(logLevel);
  const dbName = mongoUrl === undefined ? null : uniqueName('rr_app');
  const prefix = redisUrl === undefined ? null : `{${uniqueName('rr_app')}}`;
  const env = loadEnv(
    appEnvironment({
      LOG_LEVEL: logLevel,
      ...(mongoUrl === undefined ? {} : { MONGODB_URI: `${mongoUrl}/${dbName}` }),
      ...(redisUrl === undefined ? {} : { REDIS_URL: redisUrl, QUEUE_PREFIX: prefix! }),
      ...options.env,
    }),
  );
  const build = (more: RuntimeOverrides = {}) => {
    const { onAuditEvent, ...overrides } = { ...options.overrides, ...more };
    return createRuntime(env, logs.logger, {
      clock,
      bcryptRounds: 4,
      revocationCacheTtlMs: 0,
      ...overrides,
      onAuditEvent: (event) => {
        audit.push(event);
        onAuditEvent?.(event);
      },
    });
  };
  const runtime = await build();

  /** What to undo at close, in reverse order. */
  const opened: Array<() => Promise<void> | void> = [() => runtime.close()];
  let keepDatabase = false;
  const closeOpened = async () => {
    for (const close of opened.splice(0).reverse()) await close();
  };
  try {
    let db: Connection | null = null;
    let repository: RefreshTokenRepository = runtime.repository;
    if (mongoUrl !== undefined) {
      const connection = mongoose.createConnection(mongoUrl, {
        dbName: dbName!,
        serverSelectionTimeoutMS: 5_000,
      });
      opened.push(async () => {
        if (!keepDatabase) await connection.dropDatabase().catch(() => undefined);
        await connection.close();
      });
      await connection.asPromise();
      db = connection;
      repository = new MongooseRefreshTokenRepository(connection);
    }
    let workers: TokenWorkers | null = null;
    if (redisUrl !== undefined && (options.worker ?? true)) {
      const workerRedis = new Redis(redisUrl, { maxRetriesPerRequest: null });
      workerRedis.on('error', () => undefined);
      opened.push(async () => {
        const keys = await workerRedis.keys(`${prefix}:*`).catch(() => []);
        if (keys.length > 0) await workerRedis.del(...keys).catch(() => undefined);
        workerRedis.disconnect();
      });
      workers = await startTokenWorkers({
        repository,
        connection: workerRedis,
        prefix: prefix!,
        concurrency: 4,
        touchBatchSize: 50,
        touchFlushMs: 5,
        cleanup: DEFAULT_CLEANUP,
        scheduleCleanup: false,
        logger: logs.logger,
      });
      const started = workers;
      opened.push(async () => {
        await started.close(5_000);
      });
    }
    const server = runtime.app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const http = new HttpClient(base);
    opened.push(async () => {
      http.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    let closing: Promise<void> | undefined;
    return {
      name:
        mongoUrl === undefined
          ? 'in-memory adapters, inline jobs'
          : redisUrl === undefined
            ? 'MongoDB-wire server, inline jobs'
            : 'MongoDB-wire server, BullMQ on Redis, real worker',
      runtime,
      app: runtime.app,
      clock,
      audit,
      logs,
      base,
      http,
      repository,
      workers,
      get dbName() {
        return onlyWith(dbName, 'dbName is only there with mongoUrl');
      },
      get prefix() {
        return onlyWith(prefix, 'prefix is only there with redisUrl');
      },
      get db() {
        return onlyWith(db, 'db is only there with mongoUrl');
      },
      async anotherInstance(overrides = {}) {
        const instance = await build(overrides);
        opened.push(() => instance.close());
        return instance;
      },
      close: (closeOptions = {}) =>
        (closing ??= (async () => {
          keepDatabase = closeOptions.keepDatabase ?? false;
          await closeOpened();
        })()),
    };
  } catch (error) {
    await closeOpened();
    throw error;
  }
}

/** Start an app, run `run` on it, and close the app whatever happens. */
export async function withApp<T>(
  options: AppOptions,
  run: (app: TestApp) => Promise<T>,
): Promise<T> {
  const app = await startApp(options);
  try {
    return await run(app);
  } finally {
    await app.close();
  }
}

/**
 * Start an app in `beforeAll` and close it in `afterAll`. Returns a stand-in whose properties are
 * the started app's: read them inside hooks and tests, not while the `describe` body runs.
 */
export function useApp(start: () => Promise<TestApp>): TestApp {
  let started: TestApp | undefined;
  beforeAll(async () => {
    started = await start();
  });
  afterAll(async () => {
    await started?.close();
  });
  return new Proxy({} as TestApp, {
    get(_target, property) {
      if (!started) throw new Error('useApp: the app is not started yet (read it inside a test)');
      return Reflect.get(started, property, started);
    },
  });
}

/**
 * The two ways the example app runs, for `describe.each`: on the in-memory adapters with inline
 * jobs, and on the test MongoDB-wire server with BullMQ on Redis and a real worker. `options` apply
 * to both. Each row is `[title, start, the runtime's mode]`.
 */
export function bothStores(
  options: AppOptions = {},
): Array<[string, () => Promise<TestApp>, Runtime['mode']]> {
  return [
    ['in-memory adapters with inline jobs', () => startApp(options), 'memory'],
    [
      'MongoDB-wire server + BullMQ + worker',
      () => startApp({ mongoUrl: mongoUri(), redisUrl: redisUrl(), ...options }),
      'mongodb+bullmq',
    ],
  ];
}

export interface TokenBody {
  access_token: string;
  token_type: string;
  expires_in: number;
  refresh_token?: string;
}

/** The `sub` claim of an access token (the user id), read without verifying. */
export function userIdOf(accessToken: string): string {
  const payload = accessToken.split('.')[1] ?? '';
  return String(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')).sub);
}

/**
 * Register (202 expected: the answer is the same whether or not the email is new) and log in a
 * fresh user through supertest; returns the user id (from the access token), email and the token body.
 */
export async function signUp(app: Express, email = `${uniqueName('user')}@example.com`) {
  const registered = await request(app).post('/auth/register').send({ email, password: PASSWORD });
  if (registered.status !== 202)
    throw new Error(`register answered ${registered.status}: ${registered.text}`);
  const tokens = await logIn(app, email);
  return { id: userIdOf(tokens.access_token), email, tokens };
}

export async function logIn(app: Express, email: string, password = PASSWORD): Promise<TokenBody> {
  const response = await request(app).post('/auth/login').send({ email, password });
  if (response.status !== 200)
    throw new Error(`login answered ${response.status}: ${response.text}`);
  return response.body as TokenBody;
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
