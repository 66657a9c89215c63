/**
 * Shared by the http-*.test.ts files (unit and integration): the example app built the way `npm run demo` builds it (from
 * an environment through examples/runtime.ts), on the in-memory adapters or on the real
 * MongoDB-wire server + Redis with a real worker, plus small request helpers.
 */
import type { Express } from 'express';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import request from 'supertest';
import { createRuntime, type Runtime, type RuntimeOverrides } from '../../examples/runtime';
import type { Clock } from '../../src/domain/refresh-token';
import { loadEnv, type RawEnv } from '../../examples/env';
import { DEFAULT_CLEANUP, startTokenWorkers, type TokenWorkers } from '../../src/worker';
import { MongooseRefreshTokenRepository } from '../../src/adapters/mongoose';
import {
  mongoUri,
  openTestDatabase,
  openTestRedis,
  redisUrl,
  uniqueName,
} from '../support/services';

export const ACCESS_SECRET = 'test-access-secret-0123456789abcdef0123456789';
export const REFRESH_SECRET = 'test-refresh-secret-0123456789abcdef012345678';
export const PASSWORD = 'correct horse battery staple';

/** Real time plus an offset the test moves forward (so the worker, the DB and JWTs stay consistent). */
export class ShiftedClock implements Clock {
  private offsetMs = 0;

  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }

  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

/** The example app's environment for tests: fixed secrets, cookie transport on, generous rate limits. */
export function testEnvironment(extra: RawEnv = {}): RawEnv {
  return {
    NODE_ENV: 'test',
    ACCESS_TOKEN_SECRET: ACCESS_SECRET,
    REFRESH_TOKEN_SECRETS: REFRESH_SECRET,
    COOKIE_TRANSPORT: 'true',
    RATE_LIMIT_LOGIN_PER_MINUTE: '10000',
    RATE_LIMIT_ACCOUNT_PER_HOUR: '10000',
    RATE_LIMIT_TOKEN_PER_MINUTE: '10000',
    LOG_LEVEL: 'silent',
    TOUCH_WINDOW: '1s',
    ...extra,
  };
}

export const silentLogger = pino({ level: 'silent' });

export interface TestBackend {
  name: string;
  runtime: Runtime;
  app: Express;
  clock: ShiftedClock;
  close(): Promise<void>;
}

/** The example app on the in-memory adapters with inline jobs (`npm run demo` without services). */
export async function memoryBackend(
  extraEnv: RawEnv = {},
  overrides: RuntimeOverrides = {},
): Promise<TestBackend> {
  const clock = new ShiftedClock();
  const env = loadEnv(testEnvironment(extraEnv));
  const runtime = await createRuntime(env, silentLogger, { clock, bcryptRounds: 4, ...overrides });
  return {
    name: 'in-memory adapters, inline jobs',
    runtime,
    app: runtime.app,
    clock,
    close: () => runtime.close(),
  };
}

/**
 * The example app on MongoDB (the real MongoDB-wire server) with BullMQ jobs on the real Redis, and
 * a real worker (src/worker/token-workers.ts) on its own connections consuming them.
 */
export async function mongoBackend(
  extraEnv: RawEnv = {},
  overrides: RuntimeOverrides = {},
): Promise<TestBackend> {
  const clock = new ShiftedClock();
  const database = await openTestDatabase();
  const prefix = `{${uniqueName('rr_http')}}`;
  const env = loadEnv(
    testEnvironment({
      MONGODB_URI: `${mongoUri()}/${database.dbName}`,
      REDIS_URL: redisUrl(),
      QUEUE_PREFIX: prefix,
      ...extraEnv,
    }),
  );
  const runtime = await createRuntime(env, silentLogger, {
    clock,
    bcryptRounds: 4,
    versionCacheTtlMs: 0,
    ...overrides,
  });
  const workerRedis: Redis = openTestRedis();
  let workers: TokenWorkers | undefined;
  try {
    workers = await startTokenWorkers({
      repository: new MongooseRefreshTokenRepository(database.connection),
      connection: workerRedis,
      prefix,
      concurrency: 2,
      touchBatchSize: 20,
      touchFlushMs: 5,
      cleanup: DEFAULT_CLEANUP,
      scheduleCleanup: false,
      logger: silentLogger,
    });
  } catch (error) {
    await runtime.close();
    workerRedis.disconnect();
    await database.close();
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    name: 'MongoDB-wire server, BullMQ on Redis, real worker',
    runtime,
    app: runtime.app,
    clock,
    close: () =>
      (closing ??= (async () => {
        await workers?.close(5_000);
        await runtime.close();
        const keys = await workerRedis.keys(`${prefix}:*`);
        if (keys.length > 0) await workerRedis.del(...keys);
        workerRedis.disconnect();
        await database.close();
      })()),
  };
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
 * fresh user; returns the user id (from the access token), email and the token body.
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
