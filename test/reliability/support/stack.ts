/**
 * The running system the reliability tests attack: the example app (examples/runtime.ts, built from
 * an environment exactly as `npm start` builds it) listening on 127.0.0.1, on a real MongoDB-wire
 * server and (optionally) real Redis with BullMQ jobs and an in-process worker
 * (src/worker/token-workers.ts). Captures every log line and audit event, and speaks plain HTTP/1.1
 * to the app through a keep-alive agent (no supertest, no mocks).
 */
import {
  Agent,
  request as httpRequest,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import mongoose, { type Connection } from 'mongoose';
import { pino, type Logger } from 'pino';
import { createRuntime, type Runtime } from '../../../examples/runtime';
import { MongooseRefreshTokenRepository } from '../../../src/adapters/mongoose';
import type { AuditEvent } from '../../../src/options';
import { loadEnv, type RawEnv } from '../../../examples/env';
import { DEFAULT_CLEANUP, startTokenWorkers, type TokenWorkers } from '../../../src/worker';
import { ShiftedClock } from '../../integration/http-harness';
import { uniqueName } from '../../support/services';

export { ShiftedClock };

export const ACCESS_SECRET = 'reliability-access-secret-0123456789abcdef0123';
export const REFRESH_SECRET = 'reliability-refresh-secret-0123456789abcdef012';
export const PASSWORD = 'correct horse battery staple';

/** RELIABILITY_SOAK=1 runs every scenario longer and bigger. */
export const SOAK = process.env.RELIABILITY_SOAK === '1';

/** `normal` in the regular run, `soak` under RELIABILITY_SOAK=1. */
export function scale(normal: number, soak: number): number {
  return SOAK ? soak : normal;
}

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

export interface StackOptions {
  /** mongodb:// URL of the server (no database). */
  mongoUrl: string;
  /** redis:// URL: jobs go to BullMQ there. Without it, jobs are inline. */
  redisUrl?: string;
  /** Start an in-process worker on the queue. Default true when `redisUrl` is set. */
  worker?: boolean;
  /** Extra environment for the app. */
  env?: RawEnv;
  /** Level of the captured logs. Default `info`. */
  logLevel?: pino.LevelWithSilent;
  /** MongoDB version-cache lifetime (ms). Default 0: every check reads the store. */
  versionCacheTtlMs?: number;
}

export interface Stack {
  runtime: Runtime;
  /** http://127.0.0.1:<port> */
  base: string;
  dbName: string;
  prefix: string;
  clock: ShiftedClock;
  audit: AuditEvent[];
  logs: LogCapture;
  /** A connection of the test's own to the app's database (for scans and state checks). */
  db: Connection;
  repository: MongooseRefreshTokenRepository;
  workers: TokenWorkers | null;
  http: HttpClient;
  /** Stop the worker, the app and the connections; drop the database. Idempotent. */
  close(options?: { keepDatabase?: boolean }): Promise<void>;
}

/** The app environment for these tests: fixed secrets, bodies only unless asked, generous rate limits. */
export function stackEnvironment(extra: RawEnv = {}): RawEnv {
  return {
    NODE_ENV: 'test',
    ACCESS_TOKEN_SECRET: ACCESS_SECRET,
    REFRESH_TOKEN_SECRETS: REFRESH_SECRET,
    COOKIE_TRANSPORT: 'false',
    RATE_LIMIT_LOGIN_PER_MINUTE: '1000000',
    RATE_LIMIT_ACCOUNT_PER_HOUR: '1000000',
    RATE_LIMIT_TOKEN_PER_MINUTE: '1000000',
    LOG_LEVEL: 'info',
    TOUCH_WINDOW: '1s',
    ...extra,
  };
}

/** Build and start the stack. */
export async function startStack(options: StackOptions): Promise<Stack> {
  const clock = new ShiftedClock();
  const dbName = uniqueName('rr_rel');
  const prefix = `{${uniqueName('rr_rel')}}`;
  const audit: AuditEvent[] = [];
  const logs = new LogCapture(options.logLevel);
  const env = loadEnv(
    stackEnvironment({
      MONGODB_URI: `${options.mongoUrl}/${dbName}`,
      ...(options.redisUrl ? { REDIS_URL: options.redisUrl, QUEUE_PREFIX: prefix } : {}),
      ...options.env,
    }),
  );
  const runtime = await createRuntime(env, logs.logger, {
    clock,
    bcryptRounds: 4,
    versionCacheTtlMs: options.versionCacheTtlMs ?? 0,
    onAuditEvent: (event) => audit.push(event),
  });
  const db = mongoose.createConnection(options.mongoUrl, {
    dbName,
    serverSelectionTimeoutMS: 5_000,
  });
  await db.asPromise();
  const repository = new MongooseRefreshTokenRepository(db);
  let workerRedis: Redis | null = null;
  let workers: TokenWorkers | null = null;
  if (options.redisUrl && (options.worker ?? true)) {
    workerRedis = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
    workerRedis.on('error', () => undefined);
    workers = await startTokenWorkers({
      repository,
      connection: workerRedis,
      prefix,
      concurrency: 4,
      touchBatchSize: 50,
      touchFlushMs: 5,
      cleanup: DEFAULT_CLEANUP,
      scheduleCleanup: false,
      logger: logs.logger,
    });
  }
  const server = runtime.app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const port = (server.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${port}`;
  const http = new HttpClient(base);
  let closing: Promise<void> | undefined;
  return {
    runtime,
    base,
    dbName,
    prefix,
    clock,
    audit,
    logs,
    db,
    repository,
    workers,
    http,
    close: ({ keepDatabase = false } = {}) =>
      (closing ??= (async () => {
        http.close();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await workers?.close(5_000);
        workerRedis?.disconnect();
        await runtime.close();
        if (!keepDatabase) await db.dropDatabase().catch(() => undefined);
        await db.close();
      })()),
  };
}

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The parsed JSON body, or undefined. */
  body: Record<string, unknown> | undefined;
  ms: number;
}

export interface HttpRequestSpec {
  method?: string;
  path: string;
  headers?: OutgoingHttpHeaders;
  body?: string | Buffer;
  /** Give up (and reject) after this long. Default 30 s. */
  timeoutMs?: number;
}

/** Plain HTTP/1.1 to the app over keep-alive sockets. */
export class HttpClient {
  private readonly agent: Agent;
  private closedFlag = false;

  /** `maxSockets` bounds how many requests are on the wire at once. */
  constructor(
    readonly base: string,
    maxSockets = 32,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets });
  }

  /** True once `close()` ran: every later request rejects at once, and load loops end. */
  get closed(): boolean {
    return this.closedFlag;
  }

  send(spec: HttpRequestSpec): Promise<HttpAnswer> {
    if (this.closedFlag) return Promise.reject(new Error('HttpClient is closed'));
    const started = Date.now();
    const url = new URL(spec.path, this.base);
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        url,
        { method: spec.method ?? 'GET', headers: spec.headers, agent: this.agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: Record<string, unknown> | undefined;
            try {
              body = JSON.parse(text) as Record<string, unknown>;
            } catch {
              body = undefined;
            }
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              text,
              body,
              ms: Date.now() - started,
            });
          });
        },
      );
      req.setTimeout(spec.timeoutMs ?? 30_000, () =>
        req.destroy(new Error(`no answer within ${spec.timeoutMs ?? 30_000} ms`)),
      );
      req.on('error', reject);
      req.end(spec.body);
    });
  }

  json(
    method: string,
    path: string,
    body: unknown,
    headers: OutgoingHttpHeaders = {},
  ): Promise<HttpAnswer> {
    return this.send({
      method,
      path,
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  }

  refresh(refreshToken: string): Promise<HttpAnswer> {
    return this.json('POST', '/auth/token', { refresh_token: refreshToken });
  }

  bearer(method: string, path: string, accessToken: string): Promise<HttpAnswer> {
    return this.send({ method, path, headers: { authorization: `Bearer ${accessToken}` } });
  }

  close(): void {
    this.closedFlag = true;
    this.agent.destroy();
  }
}

export interface SignedUp {
  id: string;
  email: string;
  accessToken: string;
  refreshToken: string;
}

function tokensOf(answer: HttpAnswer, what: string): { accessToken: string; refreshToken: string } {
  const access = answer.body?.access_token;
  const refresh = answer.body?.refresh_token;
  if (answer.status !== 200 || typeof access !== 'string' || typeof refresh !== 'string')
    throw new Error(`${what} answered ${answer.status}: ${answer.text}`);
  return { accessToken: access, refreshToken: refresh };
}

/** Register and log in a fresh user over HTTP. */
export async function signUp(
  http: HttpClient,
  email = `${uniqueName('user')}@example.com`,
): Promise<SignedUp> {
  const registered = await http.json('POST', '/auth/register', { email, password: PASSWORD });
  if (registered.status !== 202)
    throw new Error(`register answered ${registered.status}: ${registered.text}`);
  const tokens = await logIn(http, email);
  const claims = JSON.parse(
    Buffer.from(tokens.accessToken.split('.')[1] ?? '', 'base64url').toString('utf8'),
  );
  return { id: String(claims.sub), email, ...tokens };
}

/** One more session for an existing user. */
export async function logIn(
  http: HttpClient,
  email: string,
): Promise<{ accessToken: string; refreshToken: string }> {
  return tokensOf(await http.json('POST', '/auth/login', { email, password: PASSWORD }), 'login');
}

/** Counts of answers by status. */
export function tally(statuses: number[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

/** Print a figure line that docs/reliability.md quotes (one JSON object per line, greppable). */
export function report(name: string, figures: Record<string, unknown>): void {
  process.stdout.write(`RELIABILITY ${name} ${JSON.stringify({ soak: SOAK, ...figures })}\n`);
}

/**
 * Send raw bytes to the app on a fresh connection and collect every status code it answers
 * before closing (a smuggled second request shows as a second status). `timedOut` when the
 * server neither answered nor closed within `timeoutMs`.
 */
export function rawExchange(
  base: string,
  bytes: Buffer,
  timeoutMs = 5_000,
): Promise<{ statuses: number[]; timedOut: boolean; text: string }> {
  const url = new URL(base);
  return new Promise((resolve) => {
    const socket = netConnect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, timeoutMs);
    socket.on('connect', () => socket.end(bytes));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const statuses = [...text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
      resolve({ statuses, timedOut, text });
    });
  });
}

export interface LoadSample {
  /** ms since the load started */
  at: number;
  /** 0 when no HTTP answer came (connection error or client timeout) */
  status: number;
  ms: number;
  error?: string;
}

export interface RefreshLoad {
  readonly samples: LoadSample[];
  /** Each loop's current refresh token. */
  readonly tokens: string[];
  /** Stop the loops; resolves once each has finished its request in flight. */
  stop(): Promise<void>;
}

/**
 * A steady refresh load: one loop per token, each refreshing its own session over and over
 * (keeping the token it was answered), with `pauseMs` between requests. The loops end at `stop()`
 * or when the client is closed (so a test that fails before `stop()` still lets jest exit).
 */
export function refreshLoad(http: HttpClient, tokens: string[], pauseMs = 20): RefreshLoad {
  const samples: LoadSample[] = [];
  const current = [...tokens];
  const started = Date.now();
  let running = true;
  const loop = async (index: number) => {
    while (running && !http.closed) {
      const at = Date.now() - started;
      try {
        const answer = await http.send({
          method: 'POST',
          path: '/auth/token',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ refresh_token: current[index] }),
          timeoutMs: 15_000,
        });
        samples.push({
          at,
          status: answer.status,
          ms: answer.ms,
          ...(answer.status === 200 ? {} : { error: answer.text.slice(0, 200) }),
        });
        if (answer.status === 200) current[index] = String(answer.body?.refresh_token);
      } catch (error) {
        samples.push({ at, status: 0, ms: Date.now() - started - at, error: String(error) });
      }
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  };
  const loops = current.map((_, index) => loop(index));
  return {
    samples,
    tokens: current,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}
