/**
 * What every worker-process test sets up: a fresh database with the repository's indexes, a Redis
 * client, a unique queue prefix, the queue under test, and worker processes started on them; all
 * closed (workers stopped, queue obliterated) by `close()`.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { MongooseRefreshTokenRepository } from '../../src/adapters/mongoose';
import { mongoUri, openTestDatabase, openTestRedis, redisUrl } from './services';
import {
  databaseUri,
  startWorkerProcess,
  uniquePrefix,
  type WorkerProcess,
} from './worker-process';

export interface WorkerTestBed {
  db: Awaited<ReturnType<typeof openTestDatabase>>;
  repository: MongooseRefreshTokenRepository;
  redis: Redis;
  prefix: string;
  queue: Queue;
  /** `workers/main.ts` on this database and prefix, `env` on top. Stopped by `close()`. */
  startWorker(env?: Record<string, string>): WorkerProcess;
  /** Stop the workers, obliterate the queue, close the connections, drop the database. */
  close(): Promise<void>;
}

export async function openWorkerTestBed(
  queueName: string,
  prefixName: string,
): Promise<WorkerTestBed> {
  const db = await openTestDatabase();
  const repository = new MongooseRefreshTokenRepository(db.connection);
  await repository.ensureIndexes();
  const redis = openTestRedis();
  const prefix = uniquePrefix(prefixName);
  const queue = new Queue(queueName, { connection: redis, prefix });
  const workers: WorkerProcess[] = [];
  return {
    db,
    repository,
    redis,
    prefix,
    queue,
    startWorker(env = {}) {
      const worker = startWorkerProcess({
        MONGODB_URI: databaseUri(mongoUri(), db.dbName),
        REDIS_URL: redisUrl(),
        QUEUE_PREFIX: prefix,
        ...env,
      });
      workers.push(worker);
      return worker;
    },
    async close() {
      await Promise.all(workers.splice(0).map((worker) => worker.stop()));
      await queue.obliterate({ force: true });
      await queue.close();
      redis.disconnect();
      await db.close();
    },
  };
}
