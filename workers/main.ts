#!/usr/bin/env node
/**
 * The worker process, the `refresh-rotation-worker` bin (`npm run worker` here): `.env` when
 * present → environment → `/healthz` (503 while starting) → MongoDB and Redis, retried until
 * WORKER_STARTUP_TIMEOUT (then exit 1 naming the service and its variable) → `startTokenWorkers`
 * → a periodic health log line → on SIGTERM/SIGINT a graceful close within
 * WORKER_SHUTDOWN_TIMEOUT, exit 0. Several processes may run against the same queues. Logs are JSON
 * lines (pino) on stdout; what BullMQ prints on the console goes through the same logger.
 */
import { Redis } from 'ioredis';
import mongoose, { type Connection } from 'mongoose';
import type { Logger } from 'pino';
import type { WorkerMetrics } from 'refresh-rotation/metrics';
import { reopenWhenMonitorStuck } from 'refresh-rotation/mongoose';
import { startTokenWorkers, type TokenWorkers } from 'refresh-rotation/worker';
import { loadDotEnv } from '../boot/env-reader';
import { createPinoLogger, routeConsoleTo } from '../boot/logging';
import { reasonOf, redactUri, settlesWithin, StartupError, unreachable } from '../boot/startup';
import { EnvError, loadWorkerEnv, type WorkerEnv } from './env';
import { startHealthServer, type HealthServer } from './health';

/** Time kept back from WORKER_SHUTDOWN_TIMEOUT for logging and exiting. */
const CLOSE_MARGIN_MS = 300;

/** Everything the process opened, closed in reverse order at shutdown. */
interface Running {
  mongo: Connection;
  stopWatchdog: () => void;
  workers: TokenWorkers;
  healthLog: NodeJS.Timeout | null;
}

/** Where start-up stands, for `/healthz` before the workers exist. */
interface Starting {
  /** Per service, why it is not usable yet; absent once it answered. */
  waitingFor: { mongodb?: string; redis?: string };
  attempts: number;
}

const NOT_CHECKED = 'not checked yet';

/** First retry after this long, doubling up to {@link RETRY_MAX_MS}. */
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 10_000;
/** While a service stays down with the same reason, one log line this often. */
const QUIET_LOG_MS = 30_000;

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

/** One attempt to open MongoDB: the connection, or why not. */
async function openMongo(env: WorkerEnv): Promise<Connection | string> {
  const mongo = mongoose.createConnection(env.mongodbUri, { serverSelectionTimeoutMS: 3_000 });
  mongo.on('error', () => undefined);
  try {
    await mongo.asPromise();
    return mongo;
  } catch (error) {
    await settlesWithin(mongo.close(true), 1_000);
    return reasonOf(error);
  }
}

/** One PING to Redis on a short-lived client: null when it answered, else why not. */
async function probeRedis(env: WorkerEnv): Promise<string | null> {
  let reason = 'no answer'; // the 'error' event's reason beats connect()'s "Connection is closed."
  const redis = new Redis(env.redisUrl, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 3_000,
    retryStrategy: () => null,
  });
  redis.on('error', (error: Error) => (reason = reasonOf(error)));
  try {
    await redis.connect();
    await redis.ping();
    return null;
  } catch (error) {
    return reason === 'no answer' ? reasonOf(error) : reason;
  } finally {
    redis.disconnect();
  }
}

/**
 * Wait until MongoDB and Redis both answer, retrying with backoff and a quiet log (one line when a
 * service's reason changes, else one every {@link QUIET_LOG_MS}); throw a {@link StartupError} naming
 * the service and its variable once WORKER_STARTUP_TIMEOUT has passed.
 */
async function awaitServices(
  env: WorkerEnv,
  logger: Logger,
  starting: Starting,
  stopped: () => boolean,
): Promise<Connection> {
  const started = performance.now();
  const limit = env.worker.startupTimeoutMs;
  let delay = RETRY_FIRST_MS;
  let mongo: Connection | null = null;
  const said = new Map<string, { reason: string; at: number }>();
  for (;;) {
    starting.attempts += 1;
    if (!mongo) {
      const opened = await openMongo(env);
      if (typeof opened === 'string') starting.waitingFor.mongodb = opened;
      else {
        mongo = opened;
        delete starting.waitingFor.mongodb;
      }
    }
    const redisDown = await probeRedis(env);
    if (redisDown === null) delete starting.waitingFor.redis;
    else starting.waitingFor.redis = redisDown;
    if (mongo && redisDown === null) return mongo;
    const failures = [
      ...(starting.waitingFor.mongodb === undefined
        ? []
        : [unreachable('mongodb', env.mongodbUri, starting.waitingFor.mongodb)]),
      ...(redisDown === null ? [] : [unreachable('redis', env.redisUrl, redisDown)]),
    ];
    const elapsed = performance.now() - started;
    if (stopped() || (limit > 0 && elapsed >= limit)) {
      if (mongo) await settlesWithin(mongo.close(true), 1_000);
      throw new StartupError(
        `${failures.map((f) => f.message).join(' ')} Gave up after ${Math.round(elapsed / 1_000)} s (WORKER_STARTUP_TIMEOUT=${limit} ms).`,
        'service_unreachable',
      );
    }
    for (const [service, failure] of [
      ['mongodb', starting.waitingFor.mongodb],
      ['redis', redisDown],
    ] as const) {
      if (failure === undefined || failure === null) {
        said.delete(service);
        continue;
      }
      const last = said.get(service);
      if (last && last.reason === failure && elapsed - last.at < QUIET_LOG_MS) continue;
      said.set(service, { reason: failure, at: elapsed });
      const message = failures.find((f) =>
        f.message.startsWith(service === 'redis' ? 'Redis' : 'MongoDB'),
      )!.message;
      logger.warn(
        {
          waitingFor: service,
          attempts: starting.attempts,
          retryInMs: delay,
          startupTimeoutMs: limit,
        },
        `waiting: ${message}`,
      );
    }
    const wait = limit > 0 ? Math.min(delay, limit - elapsed) : delay;
    await new Promise((resolve) => setTimeout(resolve, wait));
    delay = Math.min(delay * 2, RETRY_MAX_MS);
  }
}

function watchMongo(
  mongo: Connection,
  env: WorkerEnv,
  logger: Logger,
): Pick<Running, 'mongo' | 'stopWatchdog'> {
  mongo.removeAllListeners('error');
  mongo.on('error', (error) => logger.warn({ err: error }, 'mongodb connection error'));
  mongo.on('disconnected', () => logger.warn('mongodb disconnected'));
  mongo.on('reconnected', () => logger.info('mongodb reconnected'));
  logger.info({ mongodb: redactUri(env.mongodbUri) }, 'mongodb connected');
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

async function start(
  env: WorkerEnv,
  logger: Logger,
  connection: Connection,
  metrics: WorkerMetrics | null,
): Promise<Running> {
  const { mongo, stopWatchdog } = watchMongo(connection, env, logger);
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
  return { mongo, stopWatchdog, workers, healthLog };
}

async function shutdown(
  running: Running,
  health: HealthServer | null,
  env: WorkerEnv,
  logger: Logger,
  signal: string,
) {
  const started = performance.now();
  const budget = env.worker.shutdownTimeoutMs - CLOSE_MARGIN_MS;
  const left = () => Math.max(0, budget - (performance.now() - started));
  logger.info({ signal, timeoutMs: env.worker.shutdownTimeoutMs }, 'shutting down');
  if (running.healthLog) clearInterval(running.healthLog);
  running.stopWatchdog();
  // The workers (and their Redis client) get most of the budget; MongoDB the rest.
  const closed = await running.workers.close(Math.max(500, budget * 0.8));
  await health?.close();
  const connectionsClosed = await settlesWithin(running.mongo.close(), left());
  if (!connectionsClosed) await settlesWithin(running.mongo.close(true), 200);
  logger.info(
    { ...closed, connectionsClosed, totalMs: Math.round(performance.now() - started) },
    'stopped',
  );
}

/** The health report before the workers exist: 503, naming what start-up waits for. */
function startingReport(starting: Starting) {
  const { mongodb, redis } = starting.waitingFor;
  return Promise.resolve({
    status: 'starting',
    mongodb: mongodb === undefined ? 'ok' : `unreachable (MONGODB_URI): ${mongodb}`,
    redis: redis === undefined ? 'ok' : `unreachable (REDIS_URL): ${redis}`,
    attempts: starting.attempts,
  });
}

async function startHealth(
  env: WorkerEnv,
  report: () => Promise<{ status: string }>,
  metrics: WorkerMetrics | null,
): Promise<HealthServer | null> {
  const port = env.worker.healthPort;
  if (port === undefined) return null;
  try {
    return await startHealthServer(port, report, metrics?.scrape);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new StartupError(
      code === 'EADDRINUSE'
        ? `WORKER_HEALTH_PORT ${port} is already in use by another process: stop that process or set WORKER_HEALTH_PORT to a free port.`
        : `cannot listen on WORKER_HEALTH_PORT ${port}: ${reasonOf(error)}.`,
      code === 'EADDRINUSE' ? 'port_in_use' : 'listen_failed',
    );
  }
}

async function main(): Promise<void> {
  loadDotEnv();
  const env = readEnvOrExit();
  const logger = createPinoLogger(
    { level: env.logLevel, base: { service: 'refresh-rotation-worker', pid: process.pid } },
    env,
  );
  routeConsoleTo(logger);
  process.on('unhandledRejection', (reason) => {
    logger.fatal({ err: reason }, 'unhandled rejection');
    process.exit(1);
  });
  const fail = (error: unknown): never => {
    if (error instanceof StartupError) logger.fatal({ code: error.code }, error.message);
    else logger.fatal({ err: error }, 'worker failed to start');
    process.exit(1);
  };
  let running: Running | undefined;
  let health: HealthServer | null = null;
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
    shutdown(running, health, env, logger, signal).then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  const starting: Starting = {
    waitingFor: { mongodb: NOT_CHECKED, redis: NOT_CHECKED },
    attempts: 0,
  };
  try {
    const metrics = await loadMetrics(logger);
    health = await startHealth(
      env,
      () => (running ? running.workers.health() : startingReport(starting)),
      metrics,
    );
    const connection = await awaitServices(env, logger, starting, () => stopping);
    running = await start(env, logger, connection, metrics);
  } catch (error) {
    fail(error);
  }
  logger.info(
    {
      queuePrefix: env.queue.prefix,
      concurrency: env.worker.concurrency,
      touchBatchSize: env.worker.touchBatchSize,
      cleanupCron: env.cleanup.cron,
      healthPort: health?.port ?? null,
    },
    'worker ready',
  );
}

void main();
