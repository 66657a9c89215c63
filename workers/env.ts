/**
 * The worker's environment schema (the `refresh-rotation-worker` bin, workers/main.ts): the
 * database, Redis, the queues and the worker's own settings, each with its default, every problem
 * reported at once with the variable's name. Documented in `.env.example`. The variables the example
 * app reads the same way (services, queues, logs) are in startup/common-env.ts.
 */
import type { CleanupSettings } from 'refresh-rotation/worker';
import {
  readLogFormat,
  readLogLevel,
  readMongodbUri,
  readQueueSettings,
  readRedisUrl,
  type QueueSettings,
} from '../startup/common-env';
import { deepFreeze, EnvReader, present, type LogLevel, type RawEnv } from '../startup/env-reader';
import type { LogFormat } from '../startup/logging';

export { EnvError, parseDuration, type LogLevel, type RawEnv } from '../startup/env-reader';
export type { QueueSettings };

export interface WorkerSettings {
  /** Parallel revoke-all jobs per process (cleanup runs one at a time per process). */
  readonly concurrency: number;
  /**
   * Touch jobs held at once per process; also the largest `touchMany` batch. Keep it at or below
   * 50 on FerretDB v1, which deadlocks on an update command of about 100 statements.
   */
  readonly touchBatchSize: number;
  /** A touch batch is written at most this long after its first job arrived. */
  readonly touchFlushMs: number;
  /** SIGTERM/SIGINT: exit 0 within this time, returning unfinished jobs to the queue. */
  readonly shutdownTimeoutMs: number;
  /** A job's lock lives this long unless renewed: a crashed worker's jobs are retried after it. */
  readonly lockDurationMs: number;
  /** Port of the `/healthz` HTTP server; `undefined` disables it, 0 picks a free port. */
  readonly healthPort: number | undefined;
  /** A health log line every this often; 0 disables it. */
  readonly healthLogIntervalMs: number;
  /**
   * At start, MongoDB and Redis are retried for this long (health answers 503 naming the one
   * missing); then the process exits 1 saying which. 0 retries forever.
   */
  readonly startupTimeoutMs: number;
}

/** Settings of the cleanup runs and their schedule (the library's type). */
export type { CleanupSettings };

/** What the worker reads: the database, Redis, and its own settings. Frozen. */
export interface WorkerEnv {
  readonly nodeEnv: string;
  readonly mongodbUri: string;
  readonly redisUrl: string;
  readonly queue: QueueSettings;
  readonly worker: WorkerSettings;
  readonly cleanup: CleanupSettings;
  readonly logLevel: LogLevel;
  /** `LOG_FORMAT`: `auto` (pretty at a terminal in development), `json` or `pretty`. */
  readonly logFormat: LogFormat;
}

/**
 * Parse and validate the worker's environment: `MONGODB_URI` and `REDIS_URL` are required; token
 * secrets are not read (the worker never handles a token). Throws `EnvError`.
 */
export function loadWorkerEnv(env: RawEnv = process.env): WorkerEnv {
  const reader = new EnvReader(env);
  const nodeEnv = reader.string('NODE_ENV', 'development');
  const mongodbUri = readMongodbUri(reader);
  const redisUrl = readRedisUrl(reader);
  if (!present(env.MONGODB_URI)) {
    reader.problem(
      'MONGODB_URI is required by the worker (e.g. mongodb://localhost:27017/refresh_rotation).',
    );
  }
  if (!present(env.REDIS_URL)) {
    reader.problem('REDIS_URL is required by the worker (e.g. redis://localhost:6379).');
  }
  const queue = readQueueSettings(reader);
  const worker: WorkerSettings = {
    concurrency: reader.integer('WORKER_CONCURRENCY', 10, { min: 1, max: 1_000 }),
    touchBatchSize: reader.integer('TOUCH_BATCH_SIZE', 50, { min: 1, max: 1_000 }),
    touchFlushMs: reader.duration('TOUCH_FLUSH_DELAY', '5ms', { min: 0, max: 10_000 }),
    shutdownTimeoutMs: reader.duration('WORKER_SHUTDOWN_TIMEOUT', '25s', { min: 1_000 }),
    lockDurationMs: reader.duration('WORKER_LOCK_DURATION', '30s', { min: 1_000 }),
    healthPort: reader.optionalInteger('WORKER_HEALTH_PORT', { min: 0, max: 65_535 }),
    healthLogIntervalMs: reader.duration('WORKER_HEALTH_LOG_INTERVAL', '60s', { min: 0 }),
    startupTimeoutMs: reader.duration('WORKER_STARTUP_TIMEOUT', '2m', { min: 0 }),
  };
  const cleanup: CleanupSettings = {
    cron: reader.cron('CLEANUP_CRON', '*/10 * * * *'),
    retentionMs: reader.duration('CLEANUP_RETENTION', '7d', { min: 0 }),
    batchSize: reader.integer('CLEANUP_BATCH_SIZE', 1_000, { min: 1, max: 100_000 }),
    timeBudgetMs: reader.duration('CLEANUP_TIME_BUDGET', '2m', { min: 100 }),
  };
  const logLevel = readLogLevel(reader);
  const logFormat = readLogFormat(reader);
  reader.finish();
  return deepFreeze({
    nodeEnv,
    mongodbUri: mongodbUri ?? '',
    redisUrl: redisUrl ?? '',
    queue,
    worker,
    cleanup,
    logLevel,
    logFormat,
  });
}
