/**
 * The worker once its services answered: `startTokenWorkers` on the MongoDB connection (watched,
 * reopened when its monitor gets stuck) and the Redis URL, a periodic health log line, the
 * optional Prometheus metrics; and the graceful close of all of it within WORKER_SHUTDOWN_TIMEOUT.
 */
import { telemetry } from './telemetry';
import type { Connection } from 'mongoose';
import type { Logger } from 'pino';
import type { WorkerMetrics } from 'refresh-rotation/metrics';
import { reopenWhenMonitorStuck } from 'refresh-rotation/mongoose';
import { startTokenWorkers, type TokenWorkers } from 'refresh-rotation/worker';
import { redactUri, settlesWithin } from '../startup/failures';
import type { WorkerEnv } from './env';
import type { HealthServer } from './health-server';

/** Time kept back from WORKER_SHUTDOWN_TIMEOUT for logging and exiting. */
const CLOSE_MARGIN_MS = 300;

/** Everything the process opened, closed in reverse order at shutdown. */
export interface RunningWorker {
  mongo: Connection;
  stopWatchdog: () => void;
  workers: TokenWorkers;
  healthLog: NodeJS.Timeout | null;
}

/**
 * The worker's Prometheus metrics, or null when the optional peer `prom-client` is not installed:
 * the worker then runs as before and its health port serves no /metrics.
 */
export async function loadMetrics(logger: Logger): Promise<WorkerMetrics | null> {
  try {
    const { createWorkerMetrics } = await import('refresh-rotation/metrics');
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

/** Log the connection's life, and reopen it when the driver's monitor gets stuck. */
function watchMongo(mongo: Connection, env: WorkerEnv, logger: Logger): () => void {
  mongo.removeAllListeners('error');
  mongo.on('error', (error) => logger.warn({ err: error }, 'mongodb connection error'));
  mongo.on('disconnected', () => logger.warn('mongodb disconnected'));
  mongo.on('reconnected', () => logger.info('mongodb reconnected'));
  logger.info({ mongodb: redactUri(env.mongodbUri) }, 'mongodb connected');
  // The driver's monitor can get stuck when the server restarts (src/adapters/mongoose/monitor-watchdog.ts).
  return reopenWhenMonitorStuck(mongo, {
    uri: env.mongodbUri,
    onStuck: (stuck) => logger.error({ stuck }, 'mongodb monitor stuck: reopening the connection'),
    onReopened: (attempts) => logger.warn({ attempts }, 'mongodb connection reopened'),
    onError: (error) => logger.warn({ err: error }, 'mongodb reopen attempt failed'),
  });
}

/** A health log line every WORKER_HEALTH_LOG_INTERVAL; null when it is 0. */
function startHealthLog(workers: TokenWorkers, env: WorkerEnv, logger: Logger) {
  if (env.worker.healthLogIntervalMs <= 0) return null;
  const timer = setInterval(() => {
    workers.health().then(
      (body) => logger.info({ health: body }, 'health'),
      (error: unknown) => logger.warn({ err: error }, 'health report failed'),
    );
  }, env.worker.healthLogIntervalMs);
  timer.unref();
  return timer;
}

/** Start the token workers on `mongo` and the environment's Redis and settings. */
export async function startRunning(
  env: WorkerEnv,
  logger: Logger,
  mongo: Connection,
  metrics: WorkerMetrics | null,
): Promise<RunningWorker> {
  const stopWatchdog = watchMongo(mongo, env, logger);
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
    telemetry: telemetry?.bullmq,
  });
  metrics?.observe(workers);
  return { mongo, stopWatchdog, workers, healthLog: startHealthLog(workers, env, logger) };
}

/**
 * Close within WORKER_SHUTDOWN_TIMEOUT: the workers (and their Redis client) get most of the
 * budget, then the health server, then MongoDB (forced if it overruns).
 */
export async function stopRunning(
  running: RunningWorker,
  health: HealthServer | null,
  env: WorkerEnv,
  logger: Logger,
  signal: string,
): Promise<void> {
  const started = performance.now();
  const budget = env.worker.shutdownTimeoutMs - CLOSE_MARGIN_MS;
  const left = () => Math.max(0, budget - (performance.now() - started));
  logger.info({ signal, timeoutMs: env.worker.shutdownTimeoutMs }, 'shutting down');
  if (running.healthLog) clearInterval(running.healthLog);
  running.stopWatchdog();
  const closed = await running.workers.close(Math.max(500, budget * 0.8));
  await health?.close();
  const connectionsClosed = await settlesWithin(running.mongo.close(), left());
  if (!connectionsClosed) await settlesWithin(running.mongo.close(true), 200);
  logger.info(
    { ...closed, connectionsClosed, totalMs: Math.round(performance.now() - started) },
    'stopped',
  );
}
