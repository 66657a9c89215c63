/**
 * The worker (workers/main.ts, its own process): touch coalescing (a burst of touches over 1,000
 * sessions through the BullMQ producer → jobs → database writes, counted by the producer's stats
 * and the worker's /healthz), the cleanup rate over expired records, refresh p99 of the demo app
 * while cleanup runs against p99 without it, and the worker's resident memory.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import mongoose from 'mongoose';
import { BullMQTokenJobs, JOB_NAMES, QUEUE_NAMES } from 'refresh-rotation/bullmq';
import { MongooseRefreshTokenRepository } from 'refresh-rotation/mongoose';
import { freePort, type ServerHandle } from '../test/support/servers';
import type { BenchMongo } from './postgres';
import type { HealthReport } from 'refresh-rotation/worker';
import {
  codec,
  fmt,
  fmtSpread,
  initialTokens,
  sampleRss,
  seedSessions,
  sleep,
  spawnTs,
  within,
  spread,
  table,
  waitHttp,
  type Child,
  type Spread,
} from './lib';
import type { LoadResult } from './load';

const PREFIX = '{rrbench}';

export interface WorkerResult {
  touch: {
    settled: boolean;
    jobsCreated: number;
    requests: number;
    sessions: number;
    burstSeconds: number;
    foldedInProcess: number;
    sentToRedis: number;
    jobsProcessed: number;
    databaseWrites: number;
    recordsChanged: number;
    settleSeconds: number;
  };
  cleanup: {
    /** False when the cap was reached first: `deleted` is then counted in the database. */
    finished: boolean;
    expired: number;
    seedSeconds: number;
    deleted: number;
    durationMs: number;
    perSecond: number;
    batches: number;
    p99Without: Spread;
    p99During: Spread;
    ratio: number;
    rpsWithout: Spread;
    rpsDuring: Spread;
    duringRuns: number;
  };
  /** Peak over both phases (touch burst, cleanup). */
  workerRssMiB: number;
  appRssMiB: number;
  tables: string[];
}

interface Deps {
  mongo: BenchMongo;
  redis: ServerHandle;
  full: boolean;
  log: (message: string) => void;
  load: (
    url: string,
    mode: 'rotate' | 'fixed',
    tokens: string[],
    seconds: number,
    connections: number,
  ) => Promise<LoadResult>;
  startTarget: (
    name: 'full',
    mongoUri: string,
    redisUrl: string,
  ) => Promise<{ url: string; child: Child }>;
}

async function health(port: number): Promise<HealthReport> {
  const response = await fetch(`http://127.0.0.1:${port}/healthz`);
  return (await response.json()) as HealthReport;
}

export async function runWorkerBench(deps: Deps): Promise<WorkerResult> {
  const { mongo, redis, full, log } = deps;
  // Scaled down in the quick run so that `npm run bench` stays under 3 minutes.
  const touches = full ? 100_000 : 20_000;
  const sessionsCount = 1_000;
  const expired = full ? 1_000_000 : 3_000;
  const uri = `${mongo.url}/bench_worker`;
  const connection = await mongoose.createConnection(uri).asPromise();
  await connection.db!.dropDatabase();
  await new MongooseRefreshTokenRepository(connection).ensureIndexes();
  const sessions = await seedSessions(connection, sessionsCount, { keep: sessionsCount });
  const healthPort = await freePort();
  const workerEnv = {
    NODE_ENV: 'production',
    MONGODB_URI: uri,
    REDIS_URL: redis.url,
    QUEUE_PREFIX: PREFIX,
    WORKER_HEALTH_PORT: String(healthPort),
    CLEANUP_CRON: '0 0 1 1 *',
    CLEANUP_RETENTION: '0',
    CLEANUP_TIME_BUDGET: '30m',
    LOG_LEVEL: 'warn',
    WORKER_SHUTDOWN_TIMEOUT: '3s',
  };
  const worker = spawnTs('workers/main.ts', workerEnv);
  const producer = new BullMQTokenJobs({
    connection: redis.url,
    prefix: PREFIX,
    touchWindow: 1_000,
  });
  const queueConnection = new Redis(redis.url, { maxRetriesPerRequest: null });
  const cleanupQueue = new Queue(QUEUE_NAMES.cleanup, {
    connection: queueConnection,
    prefix: PREFIX,
  });
  const workerRss = sampleRss(worker.pid);
  const settleLimitMs = full ? 600_000 : 15_000;
  let app: { url: string; child: Child } | null = null;
  try {
    await waitHttp(`http://127.0.0.1:${healthPort}/healthz`, worker);

    // 1. Cleanup over expired records, with refresh load on the same database.
    const seedStarted = performance.now();
    await seedSessions(connection, expired, { expired: true, batch: 5_000 });
    const seedSeconds = (performance.now() - seedStarted) / 1000;
    // GIN lookup indexes in PostgreSQL (FerretDB on PostgreSQL, bench/postgres.ts), after the bulk load.
    mongo.addLookupIndexes?.('bench_worker', 'refresh_tokens');
    log(`seeded ${fmt(expired)} expired records in ${fmt(seedSeconds, 1)} s`);
    app = await deps.startTarget('full', uri, redis.url);
    const appRss = sampleRss(app.child.pid);
    let pool = initialTokens(sessions);
    const seconds = full ? 3 : 2;
    const records = connection.db!.collection<{
      _id: string;
      generation: number;
      keyId: number;
      sealed: string;
    }>('refresh_tokens');
    // Each run loses the sessions whose answer it did not see (cut off at its end): over the
    // hundreds of runs of a long cleanup the pool would run dry. Rebuild it from the stored
    // generations (a request still in flight is covered by the reuse grace window).
    const refill = async () => {
      await sleep(1_000);
      const current = new Map<string, string>();
      for (let start = 0; start < sessions.length; start += 50) {
        const found = await Promise.all(
          sessions
            .slice(start, start + 50)
            .map((session) => records.findOne({ _id: session.sessionId, revokedAt: null })),
        );
        for (const doc of found) {
          const token = doc && codec.unsealCurrent({ ...doc, sessionId: doc._id });
          if (token) current.set(doc!._id, token);
        }
      }
      pool = sessions.flatMap((session) => {
        const token = current.get(session.sessionId);
        return token === undefined ? [] : [token];
      });
      log(`refilled the refresh pool: ${pool.length} of ${sessions.length} sessions live`);
    };
    const run = async () => {
      if (pool.length < sessions.length / 2) await refill();
      const result = await deps.load(app!.url, 'rotate', pool, seconds, 8);
      pool = result.tokens!;
      return result;
    };
    await run(); // warm-up
    const without: LoadResult[] = [];
    for (let i = 0; i < (full ? 3 : 2); i += 1) without.push(await run());
    const before = (await health(healthPort)).processed.cleanup?.completed ?? 0;
    await cleanupQueue.add(JOB_NAMES.cleanup, {});
    const during: LoadResult[] = [];
    const cleanupStarted = performance.now();
    // On FerretDB every cleanup batch scans the table (range filters are not pushed down), so
    // 1,000,000 records cannot be cleaned in a benchmark's time: the full run stops at 10 minutes
    // and reports the rate it reached.
    const capMs = (full ? 10 : 1) * 60_000;
    let finished = false;
    for (;;) {
      const result = await run();
      log(
        `during cleanup: ${fmt(result.ok / seconds)} refresh/s, p99 ${result.p99} ms, non-2xx ${result.non2xx}, errors ${result.errors}, timeouts ${result.timeouts}`,
      );
      finished = ((await health(healthPort)).processed.cleanup?.completed ?? 0) > before;
      // Only runs that ended while the cleanup was still running count as "during".
      if (finished) break;
      during.push(result);
      if (performance.now() - cleanupStarted > capMs) break;
    }
    const cleanupElapsedMs = performance.now() - cleanupStarted;
    if (finished) for (let i = 0; i < (full ? 3 : 2); i += 1) without.push(await run());
    const cleaned = finished ? (await health(healthPort)).lastCleanup : null;
    const remaining = await within(
      connection
        .db!.collection('refresh_tokens')
        .countDocuments({ expiresAt: { $lt: new Date() } }),
      30_000,
      NaN,
    );
    log(
      `cleanup: ${finished ? JSON.stringify(cleaned) : `NOT finished after ${fmt(cleanupElapsedMs / 1000)} s`}; expired left ${remaining}; ${during.length} load runs during it`,
    );
    const p99Without = spread(without.map((r) => r.p99));
    const p99During = spread(during.map((r) => r.p99));
    const deleted = cleaned?.deleted ?? expired - remaining;
    const durationMs = cleaned?.durationMs ?? cleanupElapsedMs;
    const cleanup = {
      finished,
      expired,
      seedSeconds,
      deleted,
      durationMs,
      perSecond: deleted / (durationMs / 1000),
      batches: cleaned?.batches ?? NaN,
      p99Without,
      p99During,
      ratio: p99During.median / p99Without.median,
      rpsWithout: spread(without.map((r) => r.ok / seconds)),
      rpsDuring: spread(during.map((r) => r.ok / seconds)),
      duringRuns: during.length,
    };
    // 2. Touch burst, last: on FerretDB a touch backlog can hold the database for minutes.
    const burstStarted = performance.now();
    for (let start = 0; start < touches; start += 1_000) {
      await Promise.all(
        Array.from({ length: 1_000 }, (_v, i) =>
          producer.touch({
            sessionId: sessions[(start + i) % sessionsCount]!.sessionId,
            at: new Date(),
          }),
        ),
      );
    }
    const burstSeconds = (performance.now() - burstStarted) / 1000;
    let report = await health(healthPort);
    let last = -1;
    let settled = true;
    let jobsCreated = NaN;
    for (;;) {
      await sleep(500);
      report = await health(healthPort);
      const counts = report.queues.touch ?? {};
      const pending =
        (counts.waiting ?? 0) +
        (counts.delayed ?? 0) +
        (counts.active ?? 0) +
        (counts.prioritized ?? 0);
      if (Number.isNaN(jobsCreated))
        jobsCreated = pending + (counts.completed ?? 0) + (counts.failed ?? 0);
      const stats = producer.stats();
      if (
        pending === 0 &&
        report.touch.touches === last &&
        stats.touchesEnqueued + stats.touchesCoalesced >= touches
      )
        break;
      last = report.touch.touches;
      if (performance.now() - burstStarted > settleLimitMs) {
        settled = false;
        log(
          `touch jobs not settled after ${settleLimitMs / 1000} s: ${JSON.stringify(report.queues.touch)} ${JSON.stringify(report.touch)}`,
        );
        break;
      }
    }
    const settleSeconds = (performance.now() - burstStarted) / 1000;
    const stats = producer.stats();
    const touchResult = {
      settled,
      jobsCreated,
      requests: touches,
      sessions: sessionsCount,
      burstSeconds,
      foldedInProcess: stats.touchesCoalesced,
      sentToRedis: stats.touchesEnqueued,
      jobsProcessed: report.processed.touch?.completed ?? NaN,
      databaseWrites: report.touch.writes,
      recordsChanged: report.touch.recordsChanged,
      settleSeconds,
    };
    log(`touch: ${JSON.stringify(touchResult)}`);
    const appRssMiB = appRss();
    const workerRssMiB = workerRss();
    const tables = [
      table(
        `Worker: touch coalescing, a burst of ${fmt(touches)} touches over ${fmt(sessionsCount)} sessions (producer coalesceInterval 1 s, touchWindow 1 s; one run)`,
        [
          'touch() calls',
          'folded in process',
          'sent to Redis',
          'jobs in queue',
          'jobs processed',
          'database writes (touchMany)',
          'records changed',
          'burst s',
          settled ? 'until all written s' : 'NOT settled after s',
        ],
        [
          [
            fmt(touches),
            fmt(touchResult.foldedInProcess),
            fmt(touchResult.sentToRedis),
            fmt(jobsCreated),
            fmt(touchResult.jobsProcessed),
            fmt(touchResult.databaseWrites),
            fmt(touchResult.recordsChanged),
            fmt(burstSeconds, 1),
            fmt(settleSeconds, 1),
          ],
        ],
      ),
      table(
        `Worker: cleanup of ${fmt(expired)} expired records (batches of 1,000; one run), and refresh under it (demo app, 1,000 live sessions + the expired ones, 8 connections, ${seconds} s runs)`,
        [
          finished ? 'deleted' : 'deleted (NOT finished, cap reached)',
          'seconds',
          'deleted/s',
          'batches',
          'refresh p99 ms without cleanup',
          'p99 ms during cleanup',
          'during/without p99',
          'refresh/s without',
          'refresh/s during',
        ],
        [
          [
            fmt(cleanup.deleted),
            fmt(cleanup.durationMs / 1000, 1),
            fmt(cleanup.perSecond),
            fmt(cleanup.batches),
            fmtSpread(p99Without),
            `${fmtSpread(p99During)} (${during.length} runs)`,
            fmt(cleanup.ratio, 2),
            fmtSpread(cleanup.rpsWithout),
            fmtSpread(cleanup.rpsDuring),
          ],
        ],
      ),
      table(
        'Resident memory (peak RSS, MiB) during the worker section',
        ['worker process', 'demo app'],
        [[fmt(workerRssMiB), fmt(appRssMiB)]],
      ),
    ];
    return { touch: touchResult, cleanup, workerRssMiB, appRssMiB, tables };
  } finally {
    workerRss();
    await app?.child.stop();
    await worker.stop();
    await cleanupQueue.close();
    queueConnection.disconnect();
    await producer.close();
    // FerretDB may still be busy with the worker's last write: do not wait for it for ever.
    await within(
      connection.db!.dropDatabase().catch(() => undefined),
      15_000,
      undefined,
    );
    await within(connection.close(true), 5_000, undefined);
  }
}
