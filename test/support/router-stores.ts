/**
 * The router harness (router-harness.ts) on real services: a fresh database on the MongoDB-wire
 * server, jobs through BullMQ on Redis (a fresh prefix) and a real worker (src/adapters/bullmq-worker) in this
 * process. `close()` stops the worker, deletes the prefix's keys and drops the database.
 */
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { BullMQTokenJobs } from '../../src/adapters/bullmq';
import { MongooseRefreshTokenRepository, MongooseVersionStore } from '../../src/adapters/mongoose';
import { DEFAULT_CLEANUP, startTokenWorkers } from '../../src/adapters/bullmq-worker';
import { ShiftedClock } from './fake-clock';
import {
  memoryStores,
  routerHarness,
  type RouterHarness,
  type RouterOptions,
  type RouterStores,
} from './router-harness';
import { openTestDatabase, redisUrl, uniqueName } from './services';

const silentWorkerLogger = pino({ level: 'silent' });

/** MongoDB-wire server + BullMQ on Redis + a worker, on `clock`. */
export async function mongoBullmqStores(clock: ShiftedClock): Promise<RouterStores> {
  const opened: Array<() => Promise<void> | void> = [];
  const closeOpened = async () => {
    for (const close of opened.splice(0).reverse()) await close();
  };
  try {
    const db = await openTestDatabase();
    opened.push(() => db.close());
    const repository = new MongooseRefreshTokenRepository(db.connection, { clock });
    await repository.ensureIndexes();
    const prefix = `{${uniqueName('rr_router')}}`;
    const redis = new Redis(redisUrl(), { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined);
    opened.push(async () => {
      const keys = await redis.keys(`${prefix}:*`).catch(() => []);
      if (keys.length > 0) await redis.del(...keys).catch(() => undefined);
      redis.disconnect();
    });
    const jobs = new BullMQTokenJobs({ connection: redis, prefix, touchWindow: '1s' });
    opened.push(() => jobs.close());
    const workerRedis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
    workerRedis.on('error', () => undefined);
    opened.push(() => workerRedis.disconnect());
    const workers = await startTokenWorkers({
      repository,
      connection: workerRedis,
      prefix,
      concurrency: 4,
      touchBatchSize: 50,
      touchFlushMs: 5,
      cleanup: DEFAULT_CLEANUP,
      scheduleCleanup: false,
      clock,
      logger: silentWorkerLogger,
    });
    opened.push(() => workers.close(5_000).then(() => undefined));
    return {
      name: 'the MongoDB-wire server with BullMQ and a worker',
      repository,
      versions: new MongooseVersionStore(db.connection),
      jobs,
      close: closeOpened,
    };
  } catch (error) {
    await closeOpened();
    throw error;
  }
}

/** The router harness on the MongoDB-wire server with BullMQ and a worker. */
export async function mongoRouterHarness(options: RouterOptions = {}): Promise<RouterHarness> {
  const clock = new ShiftedClock();
  return routerHarness(options, await mongoBullmqStores(clock), clock);
}

/**
 * The two stores a router runs on, for `describe.each`: the in-memory adapters with inline jobs,
 * and the MongoDB-wire server with BullMQ and a worker. Each row is `[title, start]`.
 */
export function routerStores(
  options: RouterOptions = {},
): Array<[string, () => Promise<RouterHarness>]> {
  return [
    ['the in-memory adapters with inline jobs', async () => routerHarness(options, memoryStores())],
    ['the MongoDB-wire server with BullMQ and a worker', () => mongoRouterHarness(options)],
  ];
}
