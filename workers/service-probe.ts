/**
 * The worker's wait for its services at start: MongoDB and Redis are tried until both answer,
 * with backoff and a quiet log, for at most WORKER_STARTUP_TIMEOUT (then a `StartupError` naming
 * the service and its variable). `/healthz` answers 503 meanwhile with {@link startingReport}.
 */
import { Redis } from 'ioredis';
import mongoose, { type Connection } from 'mongoose';
import type { Logger } from 'pino';
import { reasonOf, settlesWithin, StartupError, unreachable } from '../startup/failures';
import type { WorkerEnv } from './env';

/** Where start-up stands, for `/healthz` before the workers exist. */
export interface Starting {
  /** Per service, why it is not usable yet; absent once it answered. */
  waitingFor: { mongodb?: string; redis?: string };
  attempts: number;
}

type Service = keyof Starting['waitingFor'];

/** First retry after this long, doubling up to {@link RETRY_MAX_MS}. */
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 10_000;
/** While a service stays down with the same reason, one log line this often. */
const QUIET_LOG_MS = 30_000;

/** Start-up before the first attempt: neither service checked. */
export function notCheckedYet(): Starting {
  return { waitingFor: { mongodb: 'not checked yet', redis: 'not checked yet' }, attempts: 0 };
}

/** The health report before the workers exist: 503, naming what start-up waits for. */
export function startingReport(starting: Starting) {
  const { mongodb, redis } = starting.waitingFor;
  return Promise.resolve({
    status: 'starting',
    mongodb: mongodb === undefined ? 'ok' : `unreachable (MONGODB_URI): ${mongodb}`,
    redis: redis === undefined ? 'ok' : `unreachable (REDIS_URL): ${redis}`,
    attempts: starting.attempts,
  });
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

/** The start-up error of each service still down, in the order MongoDB, Redis. */
function failuresOf(env: WorkerEnv, starting: Starting): Map<Service, StartupError> {
  const { mongodb, redis } = starting.waitingFor;
  const failures = new Map<Service, StartupError>();
  if (mongodb !== undefined)
    failures.set('mongodb', unreachable('mongodb', env.mongodbUri, mongodb));
  if (redis !== undefined) failures.set('redis', unreachable('redis', env.redisUrl, redis));
  return failures;
}

/**
 * A log of the wait that stays quiet: one line when a service's reason changes, else one every
 * {@link QUIET_LOG_MS}.
 */
function quietWaitLog(logger: Logger, startupTimeoutMs: number) {
  const said = new Map<Service, { reason: string; at: number }>();
  return function logWaits(
    starting: Starting,
    failures: Map<Service, StartupError>,
    elapsed: number,
    retryInMs: number,
  ): void {
    for (const service of ['mongodb', 'redis'] as const) {
      const reason = starting.waitingFor[service];
      if (reason === undefined) {
        said.delete(service);
        continue;
      }
      const last = said.get(service);
      if (last && last.reason === reason && elapsed - last.at < QUIET_LOG_MS) continue;
      said.set(service, { reason, at: elapsed });
      logger.warn(
        { waitingFor: service, attempts: starting.attempts, retryInMs, startupTimeoutMs },
        `waiting: ${failures.get(service)!.message}`,
      );
    }
  };
}

/**
 * Wait until MongoDB and Redis both answer, retrying with backoff and a quiet log; throw a
 * {@link StartupError} naming the service and its variable once WORKER_STARTUP_TIMEOUT has passed,
 * or at the first failed attempt after `stopped()` turned true. Resolves with the open MongoDB
 * connection; Redis was only probed (the workers open their own client).
 */
export async function awaitServices(
  env: WorkerEnv,
  logger: Logger,
  starting: Starting,
  stopped: () => boolean,
): Promise<Connection> {
  const started = performance.now();
  const limit = env.worker.startupTimeoutMs;
  const logWaits = quietWaitLog(logger, limit);
  let delay = RETRY_FIRST_MS;
  let mongo: Connection | null = null;
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
    const failures = failuresOf(env, starting);
    const elapsed = performance.now() - started;
    if (stopped() || (limit > 0 && elapsed >= limit)) {
      if (mongo) await settlesWithin(mongo.close(true), 1_000);
      throw new StartupError(
        `${[...failures.values()].map((f) => f.message).join(' ')} Gave up after ${Math.round(elapsed / 1_000)} s (WORKER_STARTUP_TIMEOUT=${limit} ms).`,
        'service_unreachable',
      );
    }
    logWaits(starting, failures, elapsed, delay);
    const wait = limit > 0 ? Math.min(delay, limit - elapsed) : delay;
    await new Promise((resolve) => setTimeout(resolve, wait));
    delay = Math.min(delay * 2, RETRY_MAX_MS);
  }
}
