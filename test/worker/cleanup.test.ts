/**
 * Cleanup at scale: records past retention and 1,000 live ones; two worker processes run cleanup
 * at the same time, in batches of CLEANUP_BATCH_SIZE. Exactly the expired ones go, and the runs'
 * counts add up to what was deleted (nothing counted twice, nothing failed).
 *
 * Scale: 3,000 expired records by default. `RR_CLEANUP_EXPIRED=100000` runs the issue's full
 * 100,000: on FerretDB v1 that takes many minutes (every batched delete is a full collection scan
 * there), so it is not part of the everyday run; on MongoDB the deletes are index-backed.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { CLEANUP_SCHEDULER_ID, QUEUE_NAMES } from '../../src/adapters/bullmq';
import { MongooseRefreshTokenRepository } from '../../src/adapters/mongoose';
import type { RefreshTokenRecord } from '../../src/domain/refresh-token';
import type { CleanupResult } from '../../src/adapters/bullmq-worker/processors/cleanup';
import { aNewRecord, savedFrom } from '../support/builders';
import { mongoUri, openTestDatabase, openTestRedis, redisUrl } from '../support/services';
import {
  databaseUri,
  startWorkerProcess,
  uniquePrefix,
  type WorkerProcess,
} from '../support/worker-process';
import { waitFor } from '../support/wait-for';

const DAY = 86_400_000;
const EXPIRED = Number(process.env.RR_CLEANUP_EXPIRED ?? 3_000);
const LIVE = 1_000;
const BATCH_SIZE = EXPIRED / 10;

// Generous: FerretDB scans the whole collection for every batch.
jest.setTimeout(Math.max(180_000, EXPIRED * 20));
const INSERT_CHUNK = 5_000;
/** Never fires during the test: the runs are enqueued by hand. */
const CRON = '0 0 1 1 *';

describe('cleanup with two worker processes', () => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  let redis: Redis;
  let prefix: string;
  let queue: Queue;
  const workers: WorkerProcess[] = [];

  beforeEach(async () => {
    db = await openTestDatabase();
    await new MongooseRefreshTokenRepository(db.connection).ensureIndexes();
    redis = openTestRedis();
    prefix = uniquePrefix('rr_cleanup');
    queue = new Queue(QUEUE_NAMES.cleanup, { connection: redis, prefix });
  });

  afterEach(async () => {
    await Promise.all(workers.splice(0).map((worker) => worker.stop()));
    await queue.obliterate({ force: true });
    await queue.close();
    redis.disconnect();
    await db.close();
  });

  /** Stored as the Mongoose adapter stores a record: `_id` is the record id. */
  function toDocument({ id, ...rest }: RefreshTokenRecord) {
    return { _id: id, ...rest };
  }

  /** Records past the 7-day retention: idle-expired, absolute-expired or revoked, in turn. */
  function expiredRecord(i: number, now: number): RefreshTokenRecord {
    const old = new Date(now - 100 * DAY);
    const record = savedFrom(aNewRecord({ userId: `user-${i % 5_000}`, createdAt: old }));
    switch (i % 3) {
      case 0:
        return { ...record, expiresAt: new Date(now - 8 * DAY) };
      case 1:
        return {
          ...record,
          absoluteExpiresAt: new Date(now - 9 * DAY),
          expiresAt: new Date(now - 9 * DAY),
        };
      default:
        return { ...record, revokedAt: new Date(now - 8 * DAY), revokedReason: 'logout' };
    }
  }

  it('deletes exactly the expired records in batches of the configured size; concurrent runs neither fail nor double-count', async () => {
    const collection = db.connection.collection('refresh_tokens');
    const now = Date.now();
    const inserting = performance.now();
    const live = Array.from({ length: LIVE }, (_, i) =>
      savedFrom(
        aNewRecord({
          userId: `user-${i}`,
          createdAt: new Date(now - DAY),
          expiresAt: new Date(now + 29 * DAY),
        }),
      ),
    );
    await collection.insertMany(live.map(toDocument) as never[]);
    for (let start = 0; start < EXPIRED; start += INSERT_CHUNK) {
      const chunk = Array.from({ length: Math.min(INSERT_CHUNK, EXPIRED - start) }, (_, k) =>
        expiredRecord(start + k, now),
      );
      await collection.insertMany(chunk.map(toDocument) as never[], { ordered: false });
    }
    const insertSeconds = (performance.now() - inserting) / 1000;
    expect(await collection.countDocuments()).toBe(EXPIRED + LIVE);

    const env = {
      MONGODB_URI: databaseUri(mongoUri(), db.dbName),
      REDIS_URL: redisUrl(),
      QUEUE_PREFIX: prefix,
      CLEANUP_CRON: CRON,
      CLEANUP_BATCH_SIZE: String(BATCH_SIZE),
      CLEANUP_TIME_BUDGET: '1h',
      LOG_LEVEL: 'debug',
    };
    workers.push(startWorkerProcess(env), startWorkerProcess(env));
    await Promise.all(workers.map((worker) => worker.ready()));
    const schedulers = await queue.getJobSchedulers();
    expect(schedulers.map((s) => [s.key, s.pattern])).toEqual([[CLEANUP_SCHEDULER_ID, CRON]]);

    const [first, second] = await Promise.all([
      queue.add(QUEUE_NAMES.cleanup, {}),
      queue.add(QUEUE_NAMES.cleanup, {}),
    ]);
    const runs = await waitFor(
      async () => {
        const jobs = await Promise.all([first!, second!].map((job) => queue.getJob(job.id!)));
        return jobs.every((job) => job?.finishedOn) ? jobs.map((job) => job!) : undefined;
      },
      { what: 'both cleanup runs to finish', timeoutMs: EXPIRED * 18, intervalMs: 1_000 },
    );

    for (const run of runs) expect(await run.getState()).toBe('completed');
    const results = runs.map((run) => run.returnvalue as CleanupResult);
    expect(results.reduce((sum, result) => sum + result.deleted, 0)).toBe(EXPIRED);
    expect(await collection.countDocuments()).toBe(LIVE);
    expect(
      await collection.countDocuments({ _id: { $in: live.map((record) => record.id) } } as never),
    ).toBe(LIVE);
    // Two processes, and their runs overlapped in time.
    expect(new Set(runs.map((run) => run.processedBy)).size).toBe(2);
    expect(
      runs[0]!.processedOn! < runs[1]!.finishedOn! && runs[1]!.processedOn! < runs[0]!.finishedOn!,
    ).toBe(true);

    const batchLines = () =>
      workers.flatMap((worker) =>
        worker.logs
          .filter((line) => line.msg === 'cleanup batch')
          .map((line) => line.deleted as number),
      );
    // The lines reach us through the children's pipes, possibly after the runs finished.
    const batches = await waitFor(
      () => {
        const lines = batchLines();
        return lines.reduce((sum, n) => sum + n, 0) >= EXPIRED ? lines : undefined;
      },
      { what: "the workers' 'cleanup batch' lines" },
    );
    expect(Math.max(...batches)).toBe(BATCH_SIZE);
    expect(batches.reduce((sum, n) => sum + n, 0)).toBe(EXPIRED);
    expect(batches.filter((n) => n > 0).length).toBeGreaterThanOrEqual(EXPIRED / BATCH_SIZE);
    process.stdout.write(
      `cleanup (batch size ${BATCH_SIZE}): inserted ${EXPIRED + LIVE} records in ${insertSeconds.toFixed(1)} s; runs ${results
        .map(
          (r) =>
            `${r.deleted} deleted in ${r.batches} batches, ${(r.durationMs / 1000).toFixed(1)} s (${r.stoppedBy})`,
        )
        .join(' | ')}; batch sizes ${batches.join(',')}\n`,
    );
  });
});
