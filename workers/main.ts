/**
 * The worker process (`npm run worker`): environment → connections → `ensureIndexes()` → BullMQ
 * workers for revoke-all, touch and cleanup → `/healthz` and a periodic health log line. On
 * SIGTERM/SIGINT it stops taking jobs, lets the active ones finish (or puts them back in their
 * queue at the deadline), closes everything and exits 0 within WORKER_SHUTDOWN_TIMEOUT. Several
 * processes may run against the same queues. Logs are JSON lines (pino) on stdout.
 */
import { Redis } from 'ioredis';
import mongoose, { type Connection } from 'mongoose';
import pino, { type Logger } from 'pino';
import { MongooseRefreshTokenRepository, reopenWhenMonitorStuck } from '../src/adapters/mongoose';
import { EnvError, loadWorkerEnv, type WorkerEnv } from './env';
import { startHealthServer, type HealthServer } from './health';
import { settlesWithin, startTokenWorkers, type TokenWorkers } from './token-workers';

/** Time kept back from WORKER_SHUTDOWN_TIMEOUT for logging and exiting. */
const CLOSE_MARGIN_MS = 300;

const MONGOOSE_STATES: Readonly<Record<number, string>> = {
  0: 'disconnected',
  1: 'connected',
  2: 'connecting',
  3: 'disconnecting',
};

/** Everything the process opened, closed in reverse order at shutdown. */
interface Running {
  env: WorkerEnv;
  logger: Logger;
  redis: Redis;
  mongo: Connection;
  workers: TokenWorkers;
  health: HealthServer | null;
  healthLog: NodeJS.Timeout | null;
  stopWatchdog: () => void;
}

function readEnvOrExit(): WorkerEnv {
  try {
    return loadWorkerEnv();
  } catch (error) {
    if (error instanceof EnvError) {
      process.stderr.write(`refresh-rotation worker: ${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
}

function redact(uri: string): string {
  return uri.replace(/\/\/[^@/]*@/, '//***@');
}

async function start(env: WorkerEnv, logger: Logger): Promise<Running> {
  const redis = new Redis(env.redisUrl, { maxRetriesPerRequest: null });
  redis.on('error', (error) => logger.warn({ err: error }, 'redis connection error'));
  const mongo = mongoose.createConnection(env.mongodbUri);
  mongo.on('error', (error) => logger.warn({ err: error }, 'mongodb connection error'));
  mongo.on('disconnected', () => logger.warn('mongodb disconnected'));
  mongo.on('reconnected', () => logger.info('mongodb reconnected'));
  await mongo.asPromise();
  logger.info({ mongodb: redact(env.mongodbUri) }, 'mongodb connected');
  // The driver's monitor can get stuck when the server restarts (src/adapters/mongoose/monitor-watchdog.ts).
  const stopWatchdog = reopenWhenMonitorStuck(mongo, {
    uri: env.mongodbUri,
    onStuck: (stuck) => logger.error({ stuck }, 'mongodb monitor stuck: reopening the connection'),
    onReopened: (attempts) => logger.warn({ attempts }, 'mongodb connection reopened'),
    onError: (error) => logger.warn({ err: error }, 'mongodb reopen attempt failed'),
  });

  const repository = new MongooseRefreshTokenRepository(mongo);
  await repository.ensureIndexes();

  const workers = await startTokenWorkers({
    repository,
    connection: redis,
    prefix: env.queue.prefix,
    concurrency: env.worker.concurrency,
    touchBatchSize: env.worker.touchBatchSize,
    touchFlushMs: env.worker.touchFlushMs,
    cleanup: env.cleanup,
    lockDurationMs: env.worker.lockDurationMs,
    logger,
  });
  const report = async () => {
    const state = MONGOOSE_STATES[mongo.readyState] ?? String(mongo.readyState);
    const base = await workers.health();
    return {
      ...base,
      status: base.status === 'ok' && state !== 'connected' ? 'degraded' : base.status,
      mongodb: state,
    };
  };
  const health =
    env.worker.healthPort === undefined
      ? null
      : await startHealthServer(env.worker.healthPort, report);
  const healthLog =
    env.worker.healthLogIntervalMs > 0
      ? setInterval(() => {
          report().then(
            (body) => logger.info({ health: body }, 'health'),
            (error: unknown) => logger.warn({ err: error }, 'health report failed'),
          );
        }, env.worker.healthLogIntervalMs)
      : null;
  healthLog?.unref();
  return { env, logger, redis, mongo, workers, health, healthLog, stopWatchdog };
}

async function shutdown(running: Running, signal: string): Promise<void> {
  const { env, logger } = running;
  const started = performance.now();
  const left = () =>
    Math.max(0, env.worker.shutdownTimeoutMs - CLOSE_MARGIN_MS - (performance.now() - started));
  logger.info({ signal, timeoutMs: env.worker.shutdownTimeoutMs }, 'shutting down');
  if (running.healthLog) clearInterval(running.healthLog);
  running.stopWatchdog();
  // The workers get most of the budget; closing the connections the rest.
  const closed = await running.workers.close(
    Math.max(500, (env.worker.shutdownTimeoutMs - CLOSE_MARGIN_MS) * 0.8),
  );
  await running.health?.close();
  const connectionsClosed = await settlesWithin(
    Promise.allSettled([
      running.redis.quit().catch(() => running.redis.disconnect()),
      running.mongo.close(),
    ]),
    left(),
  );
  if (!connectionsClosed) {
    running.redis.disconnect();
    await settlesWithin(running.mongo.close(true), 200);
  }
  logger.info(
    { ...closed, connectionsClosed, totalMs: Math.round(performance.now() - started) },
    'stopped',
  );
}

async function main(): Promise<void> {
  const env = readEnvOrExit();
  const logger = pino({
    level: env.logLevel,
    base: { service: 'refresh-rotation-worker', pid: process.pid },
  });
  process.on('unhandledRejection', (reason) => {
    logger.fatal({ err: reason }, 'unhandled rejection');
    process.exit(1);
  });
  let running: Running | undefined;
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    // Last resort: whatever hangs, the process is gone within the configured time.
    setTimeout(() => {
      logger.error('shutdown overran WORKER_SHUTDOWN_TIMEOUT: exiting');
      process.exit(1);
    }, env.worker.shutdownTimeoutMs).unref();
    if (!running) {
      logger.info({ signal }, 'signal before the worker was ready: exiting');
      process.exit(0);
    }
    shutdown(running, signal).then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  try {
    running = await start(env, logger);
  } catch (error) {
    logger.fatal({ err: error }, 'worker failed to start');
    process.exit(1);
  }
  logger.info(
    {
      queuePrefix: env.queue.prefix,
      concurrency: env.worker.concurrency,
      touchBatchSize: env.worker.touchBatchSize,
      cleanupCron: env.cleanup.cron,
      healthPort: running.health?.port ?? null,
    },
    'worker ready',
  );
}

void main();
