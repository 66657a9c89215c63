/**
 * Graceful shutdown of the worker process: SIGTERM with jobs in flight exits 0 within
 * WORKER_SHUTDOWN_TIMEOUT, and every job either completed or is back in its queue.
 */
import { BullMQTokenJobs, QUEUE_NAMES } from '../../src/adapters/bullmq';
import { revokeAllJobId } from '../../src/adapters/bullmq/jobs';
import { aNewRecord } from '../support/builders';
import { startFreezableProxy } from '../support/freezable-proxy';
import { mongoUri, redisUrl } from '../support/services';
import { databaseUri, type WorkerProcess } from '../support/worker-process';
import { waitFor } from '../support/wait-for';
import { openWorkerTestBed, type WorkerTestBed } from '../support/worker-test-bed';

jest.setTimeout(90_000);

const SHUTDOWN_TIMEOUT_MS = 6_000;
/** Signal delivery and process teardown around the worker's own budget. */
const EXIT_SLACK_MS = 1_000;

describe('worker shutdown on SIGTERM', () => {
  let bed: WorkerTestBed;
  let db: WorkerTestBed['db'];
  let repository: WorkerTestBed['repository'];
  let prefix: string;
  let queue: WorkerTestBed['queue'];
  let jobs: BullMQTokenJobs;

  function startWorker(env: Record<string, string> = {}): WorkerProcess {
    return bed.startWorker({
      WORKER_SHUTDOWN_TIMEOUT: `${SHUTDOWN_TIMEOUT_MS}ms`,
      WORKER_CONCURRENCY: '4',
      ...env,
    });
  }

  beforeEach(async () => {
    bed = await openWorkerTestBed(QUEUE_NAMES.revokeAll, 'rr_shutdown');
    ({ db, repository, prefix, queue } = bed);
    jobs = new BullMQTokenJobs({ connection: redisUrl(), prefix });
  });

  afterEach(async () => {
    await bed.close();
    await jobs.close();
  });

  async function stopAndTime(worker: WorkerProcess) {
    const started = performance.now();
    worker.kill('SIGTERM');
    const exit = await worker.exited;
    return { exit, ms: Math.round(performance.now() - started) };
  }

  async function userSessions(users: number, perUser: number) {
    const requestedAt = new Date(Date.now() + 1_000);
    const records = [];
    for (let u = 0; u < users; u += 1) {
      for (let s = 0; s < perUser; s += 1)
        records.push(aNewRecord({ userId: `user-${u}`, createdAt: new Date() }));
    }
    for (const record of records) await repository.save(record);
    return { records, requestedAt };
  }

  it('exits 0 in time while jobs run, and each job is either done or back in the queue for the next worker', async () => {
    const { records, requestedAt } = await userSessions(24, 2);
    const worker = startWorker();
    await worker.ready();
    const requests = Array.from({ length: 24 }, (_, u) => ({
      userId: `user-${u}`,
      reason: 'password_changed',
      requestedAt,
    }));
    await Promise.all(requests.map((request) => jobs.revokeAll(request)));
    await waitFor(async () => (await queue.getJobCounts('active')).active! > 0, {
      what: 'jobs in flight',
      intervalMs: 20,
    });

    const { exit, ms } = await stopAndTime(worker);

    expect(exit).toEqual({ code: 0, signal: null });
    expect(ms).toBeLessThan(SHUTDOWN_TIMEOUT_MS + EXIT_SLACK_MS);
    const counts = await queue.getJobCounts('active', 'completed', 'waiting', 'delayed', 'failed');
    expect(counts).toMatchObject({ active: 0, failed: 0 });
    expect(counts.completed! + counts.waiting! + counts.delayed!).toBe(requests.length);
    expect(worker.logs.find((line) => line.msg === 'stopped')).toMatchObject({ forced: false });

    await startWorker().ready();
    await waitFor(
      async () => (await queue.getJobCounts('completed')).completed === requests.length,
      { what: 'every job to complete' },
    );
    for (const record of records) {
      expect(await repository.findById(record.id)).toMatchObject({
        revokedReason: 'password_changed',
      });
    }
  });

  it('a job stuck on an unresponsive database is put back in the queue at the deadline, and the process still exits 0 in time', async () => {
    const { records, requestedAt } = await userSessions(1, 3);
    const proxy = await startFreezableProxy(Number(new URL(mongoUri()).port));
    try {
      const stuck = startWorker({
        MONGODB_URI: databaseUri(`mongodb://127.0.0.1:${proxy.port}`, db.dbName, {
          directConnection: 'true',
        }),
      });
      await stuck.ready();
      proxy.freeze();
      const request = { userId: 'user-0', reason: 'password_changed', requestedAt };
      await jobs.revokeAll(request);
      const jobId = revokeAllJobId(request);
      await waitFor(
        async () => (await queue.getJob(jobId))?.getState().then((s) => s === 'active'),
        { what: 'the job to be active' },
      );

      const { exit, ms } = await stopAndTime(stuck);

      expect(exit).toEqual({ code: 0, signal: null });
      expect(ms).toBeLessThan(SHUTDOWN_TIMEOUT_MS + EXIT_SLACK_MS);
      expect(stuck.logs.find((line) => line.msg === 'stopped')).toMatchObject({ returnedJobs: 1 });
      expect(await (await queue.getJob(jobId))?.getState()).toBe('waiting');
      await proxy.close();

      await startWorker().ready();
      await waitFor(
        async () => (await queue.getJob(jobId))?.getState().then((s) => s === 'completed'),
        { what: 'the returned job to complete' },
      );
    } finally {
      await proxy.close();
    }
    for (const record of records) {
      expect(await repository.findById(record.id)).toMatchObject({
        revokedReason: 'password_changed',
      });
    }
  });
});
