/**
 * A revoke-all job runs while the MongoDB-wire server is down (its own server, not the shared one):
 * each attempt fails, BullMQ keeps the job and retries it with backoff, and once the server is back
 * on the same data the job completes and the user's records are revoked, the job retried rather
 * than completed with nothing done.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import mongoose, { type Connection } from 'mongoose';
import { pino } from 'pino';
import { BullMQTokenJobs, QUEUE_NAMES } from '../../src/adapters/bullmq';
import { revokeAllJobId } from '../../src/adapters/bullmq/jobs';
import {
  MongooseRefreshTokenRepository,
  reopenWhenMonitorStuck,
} from '../../src/adapters/mongoose';
import { startTokenWorkers, type TokenWorkers } from '../../src/adapters/bullmq-worker';
import { aNewRecord } from '../support/builders';
import { startRestartable, type RestartableServer } from '../support/servers';
import { openTestRedis, redisUrl, uniqueName } from '../support/services';
import { waitFor } from '../support/wait-for';
import { uniquePrefix } from '../support/worker-process';

jest.setTimeout(120_000);

const CONNECT_OPTIONS = { serverSelectionTimeoutMS: 1_500 };

describe('a revoke-all job while the MongoDB-wire server is down', () => {
  let mongo: RestartableServer;
  let connection: Connection;
  let stopWatchdog: () => void;
  let redis: Redis;
  let workerRedis: Redis;
  let queue: Queue;
  let jobs: BullMQTokenJobs;
  let workers: TokenWorkers;
  let prefix: string;

  beforeAll(async () => {
    mongo = await startRestartable('mongo');
    const dbName = uniqueName('rr_rel_revoke');
    connection = await mongoose
      .createConnection(mongo.url, { dbName, ...CONNECT_OPTIONS })
      .asPromise();
    connection.on('error', () => undefined);
    // As the worker bin does: a driver monitor stuck by the restart reopens the connection.
    stopWatchdog = reopenWhenMonitorStuck(connection, {
      uri: mongo.url,
      connectOptions: { dbName, ...CONNECT_OPTIONS },
    });
    prefix = uniquePrefix('rr_rel_revoke');
    redis = openTestRedis();
    workerRedis = openTestRedis();
    queue = new Queue(QUEUE_NAMES.revokeAll, { connection: redis, prefix });
    jobs = new BullMQTokenJobs({ connection: redisUrl(), prefix });
  });

  afterAll(async () => {
    await workers?.close(5_000);
    await jobs?.close();
    await queue?.obliterate({ force: true });
    await queue?.close();
    redis?.disconnect();
    workerRedis?.disconnect();
    stopWatchdog?.();
    await connection?.dropDatabase().catch(() => undefined);
    await connection?.close();
    await mongo?.remove();
  });

  it('fails and is retried while the server is down, then completes after the restart with every record revoked', async () => {
    const repository = new MongooseRefreshTokenRepository(connection);
    await repository.ensureIndexes();
    const createdAt = new Date(Date.now() - 60_000);
    const frank = await Promise.all(
      [1, 2, 3].map(() => repository.save(aNewRecord({ userId: 'frank', createdAt }))),
    );
    const other = await repository.save(aNewRecord({ userId: 'grace', createdAt }));
    workers = await startTokenWorkers({
      repository,
      connection: workerRedis,
      prefix,
      concurrency: 1,
      scheduleCleanup: false,
      logger: pino({ level: 'silent' }),
    });

    await mongo.stop();
    const request = { userId: 'frank', reason: 'password_changed', requestedAt: new Date() };
    await jobs.revokeAll(request);
    const jobId = revokeAllJobId(request);
    const failedWhileDown = await waitFor(() => queue.getJob(jobId), {
      what: 'the job to fail at least once while the server is down',
      until: (job) => (job?.attemptsMade ?? 0) >= 1,
      timeoutMs: 30_000,
    });
    expect(failedWhileDown!.finishedOn).toBeUndefined();
    expect(['delayed', 'waiting', 'active']).toContain(await failedWhileDown!.getState());

    await mongo.restart();
    const done = await waitFor(
      async () => {
        const job = await queue.getJob(jobId);
        return job?.finishedOn ? job : undefined;
      },
      { what: 'the retried job to finish after the restart', timeoutMs: 60_000 },
    );
    expect(await done.getState()).toBe('completed');
    expect(done.attemptsMade).toBeGreaterThanOrEqual(2);
    expect(done.returnvalue).toEqual({ revoked: 3 });
    for (const record of frank) {
      expect(await repository.findById(record.id)).toMatchObject({
        revokedAt: request.requestedAt,
        revokedReason: 'password_changed',
      });
    }
    expect(await repository.findById(other.id)).toMatchObject({ revokedAt: null });
  });
});
