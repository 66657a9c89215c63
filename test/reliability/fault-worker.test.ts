/**
 * A worker process (workers/main.ts) killed with SIGKILL in the middle of revoke-all jobs: the
 * revocations were already in effect (version bump at request time), and a second worker process
 * completes every job, each exactly once in effect (every session revoked once, none twice, no job
 * failed or lost).
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { QUEUE_NAMES } from '../../src/adapters/bullmq';
import { startFreezableProxy } from '../support/freezable-proxy';
import { mongoUri, openTestRedis, redisUrl } from '../support/services';
import { databaseUri, startWorkerProcess, type WorkerProcess } from '../support/worker-process';
import { waitFor } from '../support/wait-for';
import { logIn, report, scale, signUp } from './support/load';
import { startApp, type TestApp } from '../support/app-harness';

jest.setTimeout(scale(150_000, 900_000));

function sessionIdOf(refreshToken: string): string {
  return Buffer.from(refreshToken.slice(3), 'base64url').subarray(2, 18).toString('hex');
}

describe('a worker killed mid-job', () => {
  let stack: TestApp;
  let redis: Redis;
  let queue: Queue;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    stack = await startApp({
      mongoUrl: mongoUri(),
      redisUrl: redisUrl(),
      worker: false,
      env: { COOKIE_TRANSPORT: 'false' },
    });
    redis = openTestRedis();
    queue = new Queue(QUEUE_NAMES.revokeAll, { connection: redis, prefix: stack.prefix });
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await queue?.obliterate({ force: true }).catch(() => undefined);
    await queue?.close();
    redis?.disconnect();
    await stack?.close();
  });

  function startWorker(mongoUrl: string): WorkerProcess {
    const worker = startWorkerProcess({
      MONGODB_URI: mongoUrl,
      REDIS_URL: redisUrl(),
      QUEUE_PREFIX: stack.prefix,
      WORKER_LOCK_DURATION: '2s',
      WORKER_CONCURRENCY: '4',
      CLEANUP_CRON: '0 0 1 1 *',
    });
    workers.push(worker);
    return worker;
  }

  it('SIGKILL during revoke-all jobs: the next worker completes every job, each exactly once in effect', async () => {
    const userCount = scale(12, 60);
    const users = await Promise.all(Array.from({ length: userCount }, () => signUp(stack.http)));
    const second = await Promise.all(users.map((u) => logIn(stack.http, u.email)));
    const sessions = users.flatMap((u, i) => [
      sessionIdOf(u.refreshToken),
      sessionIdOf(second[i]!.refreshToken),
    ]);

    // The doomed worker reaches MongoDB through a proxy that we freeze: its jobs hang mid-write.
    const proxy = await startFreezableProxy(Number(new URL(mongoUri()).port));
    try {
      const doomed = startWorker(
        databaseUri(`mongodb://127.0.0.1:${proxy.port}`, stack.dbName, {
          directConnection: 'true',
        }),
      );
      await doomed.ready(60_000);
      proxy.freeze();
      for (const user of users)
        expect((await stack.http.bearer('POST', '/auth/logout-all', user.accessToken)).status).toBe(
          204,
        );
      const queued = stack.audit.filter((e) => e.type === 'user.revoked_all' && !e.inline).length;
      const activeAtKill = (
        await waitFor(() => queue.getJobCounts('active'), {
          what: 'jobs to be active in the doomed worker',
          until: (c) => (c.active ?? 0) > 0,
        })
      ).active;

      // Already in effect: no refresh token of these users works, although no record is revoked yet.
      const refreshedWhileQueued = (
        await Promise.all([...users, ...second].map((u) => stack.http.refresh(u.refreshToken)))
      ).filter((a) => a.status === 200).length;
      const revokedBeforeKill = (
        await Promise.all(sessions.map((id) => stack.repository.findBySessionId(id)))
      ).filter((r) => r?.revokedAt !== null).length;

      doomed.kill('SIGKILL');
      expect(await doomed.exited).toEqual({ code: null, signal: 'SIGKILL' });
      await proxy.close();

      const successor = startWorker(databaseUri(mongoUri(), stack.dbName));
      await successor.ready(60_000);
      const counts = await waitFor(
        () => queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed'),
        {
          what: 'every revoke-all job to complete',
          until: (c) => (c.completed ?? 0) + (c.failed ?? 0) >= userCount,
          timeoutMs: 60_000,
        },
      );
      const jobs = await queue.getJobs(['completed']);
      const revokedByJobs = jobs.reduce(
        (sum, job) => sum + Number((job.returnvalue as { revoked?: number } | null)?.revoked ?? 0),
        0,
      );
      const stalledRecovered = jobs.filter(
        (job) => job.stalledCounter > 0 || job.attemptsMade > 1,
      ).length;
      const records = await Promise.all(sessions.map((id) => stack.repository.findBySessionId(id)));
      const figures = {
        jobs: queued,
        activeAtKill,
        completed: counts.completed ?? 0,
        failed: counts.failed ?? 0,
        lost: queued - (counts.completed ?? 0) - (counts.failed ?? 0),
        recoveredFromKilledWorker: stalledRecovered,
        sessions: sessions.length,
        revokedBeforeKill,
        refreshedWhileQueued,
        revokedByJobs,
        recordsRevoked: records.filter((r) => r?.revokedReason === 'user_requested').length,
      };
      report('fault.worker-sigkill', figures);

      expect(queued).toBe(userCount);
      expect(refreshedWhileQueued).toBe(0);
      expect(revokedBeforeKill).toBe(0);
      expect(figures.failed).toBe(0);
      expect(figures.lost).toBe(0);
      expect(figures.completed).toBe(userCount);
      expect(stalledRecovered).toBeGreaterThan(0);
      // Exactly once in effect: each session revoked by exactly one job, none counted twice.
      expect(revokedByJobs).toBe(sessions.length);
      expect(figures.recordsRevoked).toBe(sessions.length);
    } finally {
      await proxy.close();
    }
  });
});
