#!/usr/bin/env node
/**
 * The worker process, the `refresh-rotation-worker` bin (`npm run worker` here): environment →
 * MongoDB → `startTokenWorkers` → `/healthz` and a periodic health log line → on SIGTERM/SIGINT
 * a graceful close within WORKER_SHUTDOWN_TIMEOUT, exit 0. Several processes may run against the
 * same queues. Logs are JSON lines (pino) on stdout.
 */
import mongoose, { type Connection } from 'mongoose';
import pino, { type Logger } from 'pino';
import { reopenWhenMonitorStuck } from '../src/adapters/mongoose';
import type { WorkerMetrics } from '../src/adapters/prometheus';
import { startTokenWorkers, type TokenWorkers } from '../src/worker';
import { settlesWithin } from '../src/worker/shutdown';
import { EnvError, loadWorkerEnv, type WorkerEnv } from './env';
import { startHealthServer, type HealthServer } from './health';

/** Time kept back from WORKER_SHUTDOWN_TIMEOUT for logging and exiting. */
const CLOSE_MARGIN_MS = 300;

/** Everything the process opened, closed in reverse order at shutdown. */
interface Running {
  mongo: Connection;
  stopWatchdog: () => void;
  workers: TokenWorkers;
  health: HealthServer | null;
  healthLog: NodeJS.Timeout | null;
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

async function connectMongo(
  env: WorkerEnv,
  logger: Logger,
): Promise<Pick<Running, 'mongo' | 'stopWatchdog'>> {
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
  return { mongo, stopWatchdog };
}

/**
 * The worker's Prometheus metrics, or null when the optional peer `prom-client` is not installed:
 * the worker then runs as before and its health port serves no /metrics.
 */
async function loadMetrics(logger: Logger): Promise<WorkerMetrics | null> {
  try {
    const { createWorkerMetrics } = await import('../src/adapters/prometheus');
    return createWorkerMetrics();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'MODULE_NOT_FOUND' && code !== 'ERR_MODULE_NOT_FOUND') throw error;
    logger.info(
      'prom-client is not installed, so the health port serves no /metrics (npm install prom-client)',
    );
    return null;
  }
}

async function start(env: WorkerEnv, logger: Logger): Promise<Running> {
  const { mongo, stopWatchdog } = await connectMongo(env, logger);
  const metrics = await loadMetrics(logger);
  const workers = await startTokenWorkers({
    mongoose: mongo,
    connection: env.redisUrl,
    prefix: env.queue.prefix,
    concurrency: env.worker.concurrency,
    touchBatchSize: env.worker.touchBatchSize,
    touchFlushMs: env.worker.touchFlushMs,
    cleanup: env.cleanup,
    lockDurationMs: env.worker.lockDurationMs,
    logger,
    ...(metrics ? { onJobFinished: metrics.onJobFinished } : {}),
  });
  metrics?.observe(workers);
  const health =
    env.worker.healthPort === undefined
      ? null
      : await startHealthServer(env.worker.healthPort, () => workers.health(), metrics?.scrape);
  const healthLog =
    env.worker.healthLogIntervalMs > 0
      ? setInterval(() => {
          workers.health().then(
            (body) => logger.info({ health: body }, 'health'),
            (error: unknown) => logger.warn({ err: error }, 'health report failed'),
          );
        }, env.worker.healthLogIntervalMs)
      : null;
  healthLog?.unref();
  return { mongo, stopWatchdog, workers, health, healthLog };
}

async function shutdown(running: Running, env: WorkerEnv, logger: Logger, signal: string) {
  const started = performance.now();
  const budget = env.worker.shutdownTimeoutMs - CLOSE_MARGIN_MS;
  const left = () => Math.max(0, budget - (performance.now() - started));
  logger.info({ signal, timeoutMs: env.worker.shutdownTimeoutMs }, 'shutting down');
  if (running.healthLog) clearInterval(running.healthLog);
  running.stopWatchdog();
  // The workers (and their Redis client) get most of the budget; MongoDB the rest.
  const closed = await running.workers.close(Math.max(500, budget * 0.8));
  await running.health?.close();
  const connectionsClosed = await settlesWithin(running.mongo.close(), left());
  if (!connectionsClosed) await settlesWithin(running.mongo.close(true), 200);
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
    shutdown(running, env, logger, signal).then(
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
