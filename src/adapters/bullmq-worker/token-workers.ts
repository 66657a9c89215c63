/**
 * `startTokenWorkers`: the worker on the caller's connections. One BullMQ Worker per queue
 * (revoke-all, touch, cleanup), the cleanup job scheduler, a health report and a bounded,
 * idempotent graceful close. The `refresh-rotation-worker` bin (workers/main.ts) wires it to the
 * environment; an app may also run it in its own process.
 */
import type { Telemetry } from 'bullmq';
import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import type { Connection } from 'mongoose';
import { DEFAULT_QUEUE_PREFIX } from '../bullmq/jobs';
import { MongooseRefreshTokenRepository } from '../mongoose/mongoose-refresh-token-repository';
import { OptionsError } from '../../domain/errors';
import { systemClock, type Clock } from '../../domain/refresh-token';
import type { RefreshTokenRepository } from '../../domain/refresh-token-repository';
import { upsertCleanupScheduler } from './cleanup-scheduler';
import { createHealthReporter, type HealthReport } from './health-report';
import { consoleWorkerLogger, type WorkerLogger } from './logger';
import {
  createQueueTable,
  type CleanupSettings,
  type JobFinishedEvent,
  type QueueTable,
} from './queue-table';
import { closeWithin, createReturnSwitch, settlesWithin, type CloseReport } from './shutdown';

/** Options of {@link startTokenWorkers}. Only a store and `connection` are required. */
export interface TokenWorkersOptions {
  /**
   * The caller's Mongoose connection (connected or connecting): the workers use a
   * `MongooseRefreshTokenRepository` on it, call its `ensureIndexes()` at start, and report its
   * state in {@link HealthReport.mongodb}. Never closed by the workers. Give this or `repository`.
   */
  mongoose?: Connection | undefined;
  /** Any repository instead (a `MongooseRefreshTokenRepository` with your own options, for example). */
  repository?: RefreshTokenRepository | undefined;
  /**
   * Redis: a URL or ioredis options (the workers create a client with `maxRetriesPerRequest: null`,
   * BullMQ's requirement, and close it in `close()`), or the caller's ioredis client, `Redis` or
   * `Cluster` (give the cluster `redisOptions: { maxRetriesPerRequest: null }`), which must have
   * `maxRetriesPerRequest: null` and is never closed by the workers. On a Redis Cluster, `prefix`
   * must be a hash tag such as the default `{rr}`, so each queue's keys share a slot.
   */
  connection: string | RedisOptions | Redis | Cluster;
  /** BullMQ key prefix, the same as the producer's (`BullMQTokenJobs`). Default `{rr}`. */
  prefix?: string | undefined;
  /**
   * BullMQ's telemetry (for example `new BullMQOtel('refresh-rotation')` from `bullmq-otel`), so
   * each job is traced from the request that queued it through the worker that ran it. Job data
   * carries ids only (never a token), and the spans carry what BullMQ records of it.
   */
  telemetry?: Telemetry | undefined;
  /** Parallel revoke-all jobs per process (cleanup runs one at a time per process). Default 10. */
  concurrency?: number | undefined;
  /**
   * Touch jobs held at once per process; also the largest `touchMany` batch. Default 50 (keep it at
   * or below 50 on FerretDB v1, which deadlocks on an update command of about 100 statements).
   */
  touchBatchSize?: number | undefined;
  /** A touch batch is written at most this long after its first job arrived. Default 5 ms. */
  touchFlushMs?: number | undefined;
  /**
   * Cleanup of expired and revoked records. Defaults: `cron` every 10 minutes (`'*\/10 * * * *'`),
   * `retentionMs` 7 days, `batchSize` 1,000, `timeBudgetMs` 2 minutes.
   */
  cleanup?: Partial<CleanupSettings> | undefined;
  /** How long a job's lock lives without renewal; a crashed worker's jobs return after it. Default 30 s. */
  lockDurationMs?: number | undefined;
  /** Register the cleanup job scheduler (upsert: harmless when it exists). Default true. */
  scheduleCleanup?: boolean | undefined;
  /** Deadline of `close()` when it is called without one. Default 25 s. */
  shutdownTimeoutMs?: number | undefined;
  clock?: Clock | undefined;
  /** Where to log (pino fits). Default `console`, without debug lines. */
  logger?: WorkerLogger | undefined;
  /**
   * Called after each job attempt with its queue, outcome and duration (for metrics:
   * `createWorkerMetrics` in `refresh-rotation/metrics`). Errors it throws are ignored.
   */
  onJobFinished?: ((event: JobFinishedEvent) => void) | undefined;
}

/** The running workers. */
export interface TokenWorkers {
  /** The current {@link HealthReport}; never waits on a disconnected Redis. */
  health(): Promise<HealthReport>;
  /**
   * Stop taking jobs, let the active ones finish, and near `deadlineMs` (default
   * `shutdownTimeoutMs`) put those still running back in their queue; force-close if that too
   * overruns; then close the Redis client the workers created. Idempotent: later calls return the
   * first call's promise.
   */
  close(deadlineMs?: number): Promise<CloseReport>;
}

/** The defaults of {@link TokenWorkersOptions.cleanup}. */
export const DEFAULT_CLEANUP: CleanupSettings = Object.freeze({
  cron: '*/10 * * * *',
  retentionMs: 7 * 24 * 60 * 60 * 1_000,
  batchSize: 1_000,
  timeBudgetMs: 2 * 60 * 1_000,
});

interface Resolved {
  repository: RefreshTokenRepository;
  mongoose: Connection | undefined;
  prefix: string;
  concurrency: number;
  touchBatchSize: number;
  touchFlushMs: number;
  cleanup: CleanupSettings;
  lockDurationMs: number;
  scheduleCleanup: boolean;
  shutdownTimeoutMs: number;
  clock: Clock;
  logger: WorkerLogger;
  onJobFinished: ((event: JobFinishedEvent) => void) | undefined;
  telemetry: Telemetry | undefined;
}

/**
 * Start the revoke-all, touch and cleanup workers on the caller's connections and (by default)
 * upsert the cleanup job scheduler; resolves once every Worker is connected. Several processes may
 * run against the same queues. Throws `OptionsError` for invalid options.
 */
export async function startTokenWorkers(options: TokenWorkersOptions): Promise<TokenWorkers> {
  const settings = resolveWorkerOptions(options);
  const { logger } = settings;
  const owned = isRedisClient(options.connection) ? null : createWorkerClient(options.connection);
  owned?.on('error', (error) => logger.warn({ err: error }, 'redis connection error'));
  const redis = owned ?? (options.connection as Redis | Cluster);
  try {
    if (options.mongoose && options.repository === undefined) {
      await (settings.repository as MongooseRefreshTokenRepository).ensureIndexes();
    }
    return await startOn(redis, owned, settings);
  } catch (error) {
    owned?.disconnect();
    throw error;
  }
}

async function startOn(
  redis: Redis | Cluster,
  owned: Redis | null,
  settings: Resolved,
): Promise<TokenWorkers> {
  const { logger } = settings;
  const stopping = new AbortController();
  const returning = createReturnSwitch();
  const table = createQueueTable({
    ...settings,
    connection: redis,
    stopSignal: stopping.signal,
    returning,
  });
  await Promise.all(Object.values(table.queues).map((queue) => queue.waitUntilReady()));
  const onReconnect = settings.scheduleCleanup
    ? await scheduleCleanup(table, redis, settings, stopping.signal)
    : undefined;
  for (const worker of Object.values(table.workers)) {
    worker
      .run()
      .catch((error: unknown) => logger.error({ err: error }, 'worker stopped on an error'));
  }
  await Promise.all(Object.values(table.workers).map((worker) => worker.waitUntilReady()));

  async function close(deadlineMs: number): Promise<CloseReport> {
    const started = performance.now();
    stopping.abort();
    if (onReconnect) redis.off('ready', onReconnect);
    // The workers get most of the budget; closing a Redis client of our own the rest.
    const report = await closeWithin(
      {
        workers: Object.values(table.workers),
        queues: Object.values(table.queues),
        returning,
        drain: () => table.batcher.drain(),
        logger,
      },
      owned ? deadlineMs * 0.9 : deadlineMs,
    );
    if (owned) {
      const left = Math.max(0, deadlineMs - (performance.now() - started));
      const quit = owned.quit().catch(() => undefined);
      if (!(await settlesWithin(quit, left))) owned.disconnect();
    }
    return { ...report, durationMs: Math.round(performance.now() - started) };
  }

  let closing: Promise<CloseReport> | undefined;
  return {
    health: createHealthReporter({
      table,
      redis,
      mongoose: settings.mongoose,
      stopping: stopping.signal,
    }),
    close: (deadlineMs = settings.shutdownTimeoutMs) => (closing ??= close(deadlineMs)),
  };
}

/**
 * Upsert the cleanup job scheduler now, and again whenever Redis comes back (a Redis that restarted
 * without persistence lost it). Returns the reconnect listener, removed at close.
 */
async function scheduleCleanup(
  table: QueueTable,
  redis: Redis | Cluster,
  settings: Resolved,
  stopping: AbortSignal,
): Promise<() => void> {
  const { cleanup, logger } = settings;
  const upsert = () => upsertCleanupScheduler(table.queues.cleanup, cleanup.cron);
  await upsert();
  const onReconnect = () => {
    if (stopping.aborted) return;
    upsert().then(
      () => logger.info({ cron: cleanup.cron }, 'redis reconnected: cleanup scheduler upserted'),
      (error: unknown) =>
        logger.warn({ err: error }, 'could not upsert the cleanup scheduler after a reconnect'),
    );
  };
  redis.on('ready', onReconnect);
  return onReconnect;
}

function resolveWorkerOptions(options: TokenWorkersOptions): Resolved {
  if (typeof options !== 'object' || options === null) {
    throw new OptionsError('startTokenWorkers needs options: { mongoose, connection }');
  }
  const repository =
    options.repository ??
    (options.mongoose ? new MongooseRefreshTokenRepository(options.mongoose) : undefined);
  if (repository === undefined) {
    throw new OptionsError(
      'startTokenWorkers needs a store: give mongoose (your Mongoose connection) or repository',
    );
  }
  if (
    options.connection === undefined ||
    options.connection === null ||
    (typeof options.connection !== 'string' && typeof options.connection !== 'object')
  ) {
    throw new OptionsError(
      'startTokenWorkers needs connection: a Redis URL, ioredis options or an ioredis client',
    );
  }
  const cleanup: CleanupSettings = { ...DEFAULT_CLEANUP, ...options.cleanup };
  return {
    repository,
    mongoose: options.mongoose,
    prefix: options.prefix ?? DEFAULT_QUEUE_PREFIX,
    concurrency: positiveInteger(options.concurrency, 10, 'concurrency'),
    touchBatchSize: positiveInteger(options.touchBatchSize, 50, 'touchBatchSize'),
    touchFlushMs: nonNegative(options.touchFlushMs, 5, 'touchFlushMs'),
    cleanup: {
      cron: cleanup.cron,
      retentionMs: nonNegative(cleanup.retentionMs, 0, 'cleanup.retentionMs'),
      batchSize: positiveInteger(cleanup.batchSize, 1, 'cleanup.batchSize'),
      timeBudgetMs: nonNegative(cleanup.timeBudgetMs, 0, 'cleanup.timeBudgetMs'),
    },
    lockDurationMs: positiveInteger(options.lockDurationMs, 30_000, 'lockDurationMs'),
    scheduleCleanup: options.scheduleCleanup ?? true,
    shutdownTimeoutMs: positiveInteger(options.shutdownTimeoutMs, 25_000, 'shutdownTimeoutMs'),
    clock: options.clock ?? systemClock,
    logger: options.logger ?? consoleWorkerLogger,
    onJobFinished: optionalFunction(options.onJobFinished, 'onJobFinished'),
    telemetry: options.telemetry,
  };
}

function optionalFunction<F>(value: F | undefined, name: string): F | undefined {
  if (value !== undefined && typeof value !== 'function') {
    throw new OptionsError(`${name} must be a function; got ${typeof value}`);
  }
  return value;
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new OptionsError(`${name} must be a positive integer; got ${String(value)}`);
  }
  return value;
}

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) {
    throw new OptionsError(`${name} must be a number of milliseconds ≥ 0; got ${String(value)}`);
  }
  return value;
}

function isRedisClient(
  connection: TokenWorkersOptions['connection'],
): connection is Redis | Cluster {
  return (
    typeof connection === 'object' &&
    typeof (connection as { duplicate?: unknown }).duplicate === 'function'
  );
}

function createWorkerClient(connection: string | RedisOptions): Redis {
  return typeof connection === 'string'
    ? new Redis(connection, { maxRetriesPerRequest: null })
    : new Redis({ ...connection, maxRetriesPerRequest: null });
}
