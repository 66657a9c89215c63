/**
 * The demo app's composition root: from the parsed environment (`demo/env.ts`) to adapters,
 * the rotation service and the app. In-memory adapters and inline jobs when neither MONGODB_URI nor
 * REDIS_URL is set; MongoDB (and BullMQ when REDIS_URL is set) otherwise.
 */
import type { Express } from 'express';
import type { Store } from 'express-rate-limit';
import { Redis } from 'ioredis';
import mongoose, { type Connection } from 'mongoose';
import type { Logger } from 'pino';
import { Queue } from 'bullmq';
import {
  RotationService,
  type AuditEvent,
  type Clock,
  type DPoPReplayCache,
  type RefreshRotationOptions,
  type RefreshTokenRepository,
  type RevocationBus,
  type TokenJobs,
  type VersionStore,
} from 'refresh-rotation';
import { BullMQTokenJobs, QUEUE_NAMES } from 'refresh-rotation/bullmq';
import {
  InlineTokenJobs,
  MemoryDPoPReplayCache,
  MemoryRefreshTokenRepository,
  MemoryVersionStore,
} from 'refresh-rotation/memory';
import { createRefreshMetrics, type RefreshMetrics } from 'refresh-rotation/metrics';
import {
  MongooseRefreshTokenRepository,
  MongooseVersionStore,
  reopenWhenMonitorStuck,
} from 'refresh-rotation/mongoose';
import { RedisDPoPReplayCache, RedisRevocationBus } from 'refresh-rotation/redis';
import { reasonOf, settlesWithin, unreachable } from '../startup/failures';
import type { Env } from './env';
import { createApp, type RateLimitName } from './app';
import type { DashboardQueue } from './dashboard';
import { MemoryUserStore, MongoUserStore, type UserStore } from './users';
import { telemetry } from './telemetry';

/** How the app stores things: chosen from the environment. */
export type RuntimeMode = 'memory' | 'mongodb' | 'mongodb+bullmq';

export interface Runtime {
  mode: RuntimeMode;
  app: Express;
  service: RotationService;
  /** The session repository, for a worker started in the same process (demo, tests). */
  repository: RefreshTokenRepository;
  /** The accounts, for tests (registration answers 202 without an id: it does not enumerate). */
  users: UserStore;
  /** Close the connections this runtime opened. Idempotent. */
  close(): Promise<void>;
}

/** What the tests (and only they) change. */
export interface RuntimeOverrides {
  clock?: Clock;
  bcryptRounds?: number;
  rateLimitStore?: (name: RateLimitName) => Store;
  onAuditEvent?: RefreshRotationOptions['onAuditEvent'];
  /** The service's `revocationCache.ttl` (versions and session states without a synced bus), ms. Default 1000. */
  revocationCacheTtlMs?: number;
  /** Instead of `ADMIN_USER_IDS`. */
  adminUserIds?: string[];
  /** The browser module the page loads, instead of the package's build in dist/ (AppConfig `clientModule`). */
  clientModule?: string;
}

interface Stores {
  mode: RuntimeMode;
  repository: RefreshTokenRepository;
  versions: VersionStore;
  jobs: TokenJobs;
  /** With several instances on one Redis: every revocation reaches every instance's caches at once. */
  revocationBus?: RevocationBus;
  /** Where DPoP proofs are claimed once: Redis when set, so every instance refuses a replay. */
  dpopReplayCache: DPoPReplayCache;
  users: UserStore;
  /** The job queues, for the dashboard (Redis mode only). */
  queues: DashboardQueue[];
  ready(): Promise<void>;
  close(): Promise<void>;
}

/** Fail fast when MongoDB is down: a refresh answers 503 in about two seconds, not thirty. */
const MONGO_TIMEOUTS = {
  serverSelectionTimeoutMS: 2_000,
  connectTimeoutMS: 2_000,
  socketTimeoutMS: 10_000,
};

/** The most each step of `close()` waits for a service that may be gone. */
const CLOSE_STEP_MS = 2_000;

/** True when `promise` settled (either way) within {@link CLOSE_STEP_MS}. */
function settles(promise: Promise<unknown>): Promise<boolean> {
  return settlesWithin(promise, CLOSE_STEP_MS);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function memoryStores(): Stores {
  const repository = new MemoryRefreshTokenRepository();
  return {
    mode: 'memory',
    repository,
    versions: new MemoryVersionStore(),
    jobs: new InlineTokenJobs(repository),
    dpopReplayCache: new MemoryDPoPReplayCache(),
    users: new MemoryUserStore(),
    queues: [],
    ready: async () => undefined,
    close: async () => undefined,
  };
}

async function mongoStores(env: Env, logger: Logger, overrides: RuntimeOverrides): Promise<Stores> {
  const connectOptions = { ...MONGO_TIMEOUTS, bufferCommands: false };
  const connection: Connection = await mongoose
    .createConnection(env.mongodbUri!, connectOptions)
    .asPromise()
    .catch((error: unknown) => {
      throw unreachable(
        'mongodb',
        env.mongodbUri!,
        reasonOf(error),
        ' (or unset MONGODB_URI and REDIS_URL for the in-memory demo)',
      );
    });
  // The driver's monitor can get stuck when the server restarts (src/adapters/mongoose/monitor-watchdog.ts).
  const stopWatchdog = reopenWhenMonitorStuck(connection, {
    uri: env.mongodbUri!,
    connectOptions,
    onStuck: (stuck) => logger.error({ stuck }, 'mongodb monitor stuck: reopening the connection'),
    onReopened: (attempts) => logger.warn({ attempts }, 'mongodb connection reopened'),
    onError: (error) => logger.warn({ err: error }, 'mongodb reopen attempt failed'),
  });
  const redis = env.redisUrl
    ? new Redis(env.redisUrl, {
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        lazyConnect: true,
      })
    : null;
  let revocationBus: RedisRevocationBus | null = null;
  try {
    const repository = new MongooseRefreshTokenRepository(connection, {
      clock: overrides.clock,
    });
    const users = new MongoUserStore(connection);
    await Promise.all([repository.ensureIndexes(), users.ensureIndexes()]);
    const versions = new MongooseVersionStore(connection);
    let redisReason = 'no answer';
    redis?.on('error', (error: Error) => {
      redisReason = reasonOf(error);
      logger.warn({ err: { message: error.message } }, 'redis error');
    });
    await redis?.connect().catch((error: unknown) => {
      throw unreachable('redis', env.redisUrl!, `${reasonOf(error)}: ${redisReason}`);
    });
    const bullmq = redis
      ? new BullMQTokenJobs({
          connection: redis,
          prefix: env.queue.prefix,
          touchWindow: env.queue.touchWindowMs,
          telemetry: telemetry?.bullmq,
          onError: (error) => logger.warn({ err: { message: error.message } }, 'job queue error'),
        })
      : null;
    revocationBus = redis
      ? new RedisRevocationBus({
          connection: redis,
          channel: `${env.queue.prefix}:revocations`,
          onError: (error) =>
            logger.warn({ err: { message: error.message } }, 'revocation bus error'),
        })
      : null;
    const queues = redis
      ? Object.values(QUEUE_NAMES).map(
          (name) => new Queue(name, { connection: redis, prefix: env.queue.prefix }),
        )
      : [];
    // Until it is subscribed, other instances' revocations reach this one after the cache lifetime.
    const bus = revocationBus;
    if (bus) await withTimeout(bus.ready(), 5_000, 'Redis pub/sub');
    return {
      mode: bullmq ? 'mongodb+bullmq' : 'mongodb',
      repository,
      versions,
      jobs: bullmq ?? new InlineTokenJobs(repository),
      ...(bus ? { revocationBus: bus } : {}),
      dpopReplayCache: redis
        ? new RedisDPoPReplayCache({ connection: redis, prefix: `${env.queue.prefix}:dpop:` })
        : new MemoryDPoPReplayCache(),
      users,
      queues,
      async ready() {
        await withTimeout(connection.db!.admin().ping(), 2_000, 'MongoDB');
        if (redis) await withTimeout(redis.ping(), 2_000, 'Redis');
      },
      // Bounded: with MongoDB or Redis gone, each step gives up after its share and moves on.
      async close() {
        stopWatchdog();
        if (bullmq) await settles(bullmq.close());
        await Promise.all(queues.map((queue) => settles(queue.close())));
        if (bus) await settles(bus.close());
        redis?.disconnect();
        if (!(await settles(connection.close()))) await settles(connection.close(true));
      },
    };
  } catch (error) {
    stopWatchdog();
    await revocationBus?.close();
    redis?.disconnect();
    await connection.close();
    throw error;
  }
}

/**
 * The audit events an operator must see in the log, not only on a dashboard: a token with a valid
 * tag that its session never had means a refresh secret is out (docs/operations.md). Ids only,
 * never a token.
 */
function logAuditEvent(logger: Logger, event: AuditEvent): void {
  if (event.type !== 'secret.compromise_suspected') return;
  const { keyId, userId, sessionId } = event;
  logger.warn(
    { keyId, userId, sessionId },
    'refresh-rotation: a token with a valid tag that its session never had: a refresh secret may be compromised; rotate REFRESH_TOKEN_SECRETS and run rotateGlobal (docs/operations.md)',
  );
}

function serviceOptions(
  env: Env,
  stores: Stores,
  overrides: RuntimeOverrides,
  metrics: RefreshMetrics,
  logger: Logger,
): RefreshRotationOptions {
  const { accessToken, refreshToken } = env;
  return {
    repository: stores.repository,
    versions: stores.versions,
    jobs: stores.jobs,
    revocationBus: stores.revocationBus,
    revocationCache: { ttl: overrides.revocationCacheTtlMs },
    accessToken: {
      algorithm: accessToken.algorithm,
      secret: accessToken.secret,
      privateKey: accessToken.privateKey,
      publicKey: accessToken.publicKey,
      ttl: accessToken.ttlMs,
      issuer: accessToken.issuer,
      audience: accessToken.audience,
    },
    refreshToken: {
      secrets: refreshToken.secrets,
      idleTtl: refreshToken.idleTtlMs,
      absoluteTtl: refreshToken.absoluteTtlMs,
      reuseGrace: refreshToken.reuseGraceMs,
    },
    clock: overrides.clock,
    onAuditEvent: (event) => {
      metrics.onAuditEvent(event);
      logAuditEvent(logger, event);
      overrides.onAuditEvent?.(event);
    },
  };
}

/** The OAuth issuer of the example: `ACCESS_TOKEN_ISSUER` when it is a URL, else `PUBLIC_URL`. */
function issuerOf(env: Env): string {
  const configured = env.accessToken.issuer;
  if (configured !== undefined && /^https?:\/\//.test(configured)) return configured;
  return env.http.publicUrl;
}

/** Build the stores, the service and the app from the environment. */
export async function createRuntime(
  env: Env,
  logger: Logger,
  overrides: RuntimeOverrides = {},
): Promise<Runtime> {
  const stores = env.mongodbUri ? await mongoStores(env, logger, overrides) : memoryStores();
  try {
    // The metrics of this instance only: each app instance has its own registry and `/metrics`.
    const metrics = createRefreshMetrics();
    const service = new RotationService(serviceOptions(env, stores, overrides, metrics, logger));
    metrics.observe(service);
    const adminUserIds = overrides.adminUserIds ?? env.http.adminUserIds;
    if (adminUserIds.length > 0 && stores.queues.length === 0)
      logger.warn('ADMIN_USER_IDS is set but REDIS_URL is not: there is no queue dashboard');
    const { cookie, rateLimit } = env.http;
    const app = createApp({
      service,
      users: stores.users,
      logger,
      cookie: cookie.transport
        ? {
            name: cookie.name,
            secure: cookie.secure,
            csrfHeader: cookie.csrfHeader,
            development: env.nodeEnv === 'development' || env.nodeEnv === 'test',
            ...(cookie.dbsc
              ? { dbsc: { secret: cookie.dbsc.secret, boundTtl: cookie.dbsc.boundTtlMs } }
              : {}),
          }
        : false,
      rateLimit: {
        loginPerMinute: rateLimit.loginPerMinute,
        accountPerHour: rateLimit.accountPerHour,
        tokenPerMinute: rateLimit.tokenPerMinute,
        ...(overrides.rateLimitStore ? { store: overrides.rateLimitStore } : {}),
      },
      issuer: issuerOf(env),
      dpop: { publicUrl: env.http.publicUrl, replayCache: stores.dpopReplayCache },
      ready: stores.ready,
      metrics,
      ...(adminUserIds.length > 0 && stores.queues.length > 0
        ? { admin: { userIds: adminUserIds, queues: stores.queues } }
        : {}),
      bcryptRounds: overrides.bcryptRounds,
      clientModule: overrides.clientModule,
    });
    let closing: Promise<void> | undefined;
    return {
      mode: stores.mode,
      app,
      service,
      repository: stores.repository,
      users: stores.users,
      close: () => (closing ??= stores.close()),
    };
  } catch (error) {
    await stores.close();
    throw error;
  }
}
