/**
 * revoke-all end to end: the service enqueues on real Redis, a worker started as a separate
 * process (`workers/main.ts`) revokes on the real MongoDB-wire server.
 */
import { BullMQTokenJobs, QUEUE_NAMES } from '../../src/adapters/bullmq';
import { RETRY, revokeAllJobId } from '../../src/adapters/bullmq/jobs';
import { MongooseVersionStore } from '../../src/adapters/mongoose';
import type { AuditEvent } from '../../src/options';
import { RotationService } from '../../src/rotation-service';
import { pino } from 'pino';
import { startTokenWorkers, type TokenWorkers } from '../../src/adapters/bullmq-worker';
import { aNewRecord } from '../support/builders';
import { startFreezableProxy } from '../support/freezable-proxy';
import { withOutage } from '../support/outage-repository';
import { mongoUri, openTestRedis, redisUrl } from '../support/services';
import { databaseUri, type WorkerProcess } from '../support/worker-process';
import { waitFor } from '../support/wait-for';
import { openWorkerTestBed, type WorkerTestBed } from '../support/worker-test-bed';

jest.setTimeout(90_000);

const SECRETS = { access: 'a'.repeat(32), refresh: 'r'.repeat(32) };

describe('revoke-all through the worker process', () => {
  let bed: WorkerTestBed;
  let db: WorkerTestBed['db'];
  let repository: WorkerTestBed['repository'];
  let redis: WorkerTestBed['redis'];
  let prefix: string;
  let queue: WorkerTestBed['queue'];
  let jobs: BullMQTokenJobs;
  let service: RotationService;
  let audit: AuditEvent[];

  function startWorker(env: Record<string, string> = {}): WorkerProcess {
    return bed.startWorker(env);
  }

  beforeEach(async () => {
    bed = await openWorkerTestBed(QUEUE_NAMES.revokeAll, 'rr_revoke');
    ({ db, repository, redis, prefix, queue } = bed);
    jobs = new BullMQTokenJobs({ connection: redisUrl(), prefix });
    audit = [];
    service = new RotationService({
      repository,
      versions: new MongooseVersionStore(db.connection),
      jobs,
      accessToken: { secret: SECRETS.access },
      refreshToken: { secrets: [SECRETS.refresh] },
      onAuditEvent: (event) => audit.push(event),
    });
  });

  afterEach(async () => {
    await bed.close();
    await jobs.close();
  });

  async function finishedJob(id: string) {
    return waitFor(
      async () => {
        const job = await queue.getJob(id);
        return job?.finishedOn ? job : undefined;
      },
      { what: `job ${id} to complete` },
    );
  }

  it('revokes every earlier session of the user in the worker, and a login made after the request stays live', async () => {
    const before = await Promise.all([1, 2, 3].map(() => service.issue({ userId: 'alice' })));
    const bob = await service.issue({ userId: 'bob' });

    await service.revokeAllForUser('alice', 'password_changed');
    const event = audit.find((e) => e.type === 'user.revoked_all');
    expect(event).toMatchObject({ inline: false });
    const jobId = revokeAllJobId({ userId: 'alice', requestedAt: event!.at });
    expect(await (await queue.getJob(jobId))?.getState()).toBe('waiting');

    // Logged in after the request but before the worker ran: a late job must spare it.
    const after = await service.issue({ userId: 'alice' });
    for (const session of before) {
      expect(await repository.findBySessionId(session.sessionId)).toMatchObject({
        revokedAt: null,
      });
    }

    await startWorker().ready();
    const job = await finishedJob(jobId);

    expect(job.returnvalue).toEqual({ revoked: 3 });
    for (const session of before) {
      expect(await repository.findBySessionId(session.sessionId)).toMatchObject({
        revokedReason: 'password_changed',
      });
      await expect(service.refresh(session.refreshToken)).rejects.toMatchObject({
        code: 'invalid_grant',
      });
    }
    expect(await repository.findBySessionId(after.sessionId)).toMatchObject({ revokedAt: null });
    await expect(service.refresh(after.refreshToken)).resolves.toMatchObject({ userId: 'alice' });
    expect(await repository.findBySessionId(bob.sessionId)).toMatchObject({ revokedAt: null });
  });

  it('an enqueue repeated by two app instances is one job: it revokes once and both enqueues complete', async () => {
    const sessions = await Promise.all([1, 2].map(() => service.issue({ userId: 'carol' })));
    const request = { userId: 'carol', reason: 'admin_action', requestedAt: new Date() };
    // The other instance runs on the caller's own ioredis client (which it must leave open).
    const otherInstance = new BullMQTokenJobs({ connection: redis, prefix });
    try {
      await Promise.all([jobs.revokeAll(request), otherInstance.revokeAll(request)]);
      expect(await queue.getJobCounts('waiting', 'active', 'completed')).toEqual({
        waiting: 1,
        active: 0,
        completed: 0,
      });

      const worker = startWorker();
      await worker.ready();
      const job = await finishedJob(revokeAllJobId(request));
      expect(job.returnvalue).toEqual({ revoked: 2 });

      // A late duplicate of a completed request adds nothing either.
      await otherInstance.revokeAll(request);
      expect(await queue.getJobCounts('waiting', 'completed')).toEqual({
        waiting: 0,
        completed: 1,
      });
      // The line reaches us through the child's pipe after the job completed: wait for it.
      const done = () => worker.logs.filter((line) => line.msg === 'revoke-all done');
      await waitFor(() => done().length > 0, { what: "the worker's 'revoke-all done' line" });
      expect(done()).toHaveLength(1);

      // A malformed payload fails at once, without using its retries.
      const bad = await queue.add(
        QUEUE_NAMES.revokeAll,
        { userId: 'carol' },
        { ...RETRY.revokeAll },
      );
      const failed = await waitFor(
        async () => {
          const job = await queue.getJob(bad.id!);
          return job?.finishedOn ? job : undefined;
        },
        { what: 'the malformed job to fail' },
      );
      expect(await failed.getState()).toBe('failed');
      expect(failed.attemptsMade).toBe(1);
      expect(failed.failedReason).toMatch(/reason must be a non-empty string/);
    } finally {
      await otherInstance.close();
    }
    expect(await redis.ping()).toBe('PONG');
    for (const session of sessions) {
      expect(await repository.findBySessionId(session.sessionId)).toMatchObject({
        revokedReason: 'admin_action',
      });
    }
  });

  it('a worker killed (SIGKILL) during a revoke-all leaves the job to the next worker, which completes it', async () => {
    const sessions = await Promise.all([1, 2, 3].map(() => service.issue({ userId: 'dave' })));
    // The first worker reaches the database through a proxy we can stall, so its job stays active.
    const proxy = await startFreezableProxy(Number(new URL(mongoUri()).port));
    try {
      const doomed = startWorker({
        MONGODB_URI: databaseUri(`mongodb://127.0.0.1:${proxy.port}`, db.dbName, {
          directConnection: 'true',
        }),
        WORKER_LOCK_DURATION: '2s',
      });
      await doomed.ready();
      proxy.freeze();
      const request = { userId: 'dave', reason: 'password_changed', requestedAt: new Date() };
      await jobs.revokeAll(request);
      const jobId = revokeAllJobId(request);
      await waitFor(
        async () => (await queue.getJob(jobId))?.getState().then((s) => s === 'active'),
        { what: 'the job to be active' },
      );

      doomed.kill('SIGKILL');
      expect(await doomed.exited).toEqual({ code: null, signal: 'SIGKILL' });
      // Drop what the dead worker had sent: its update never reaches the database.
      await proxy.close();
      for (const session of sessions) {
        expect(await repository.findBySessionId(session.sessionId)).toMatchObject({
          revokedAt: null,
        });
      }

      const successor = startWorker({ WORKER_LOCK_DURATION: '2s' });
      await successor.ready();
      const job = await finishedJob(jobId);
      expect(await job.getState()).toBe('completed');
      expect(job.returnvalue).toEqual({ revoked: 3 });
      expect(job.stalledCounter).toBeGreaterThanOrEqual(1);
      // The line is written after the job completes and reaches us through a pipe: wait for it.
      await waitFor(
        () => successor.logs.some((line) => line.msg === 'revoke-all done' && line.jobId === jobId),
        { what: "the successor's 'revoke-all done' line" },
      );
    } finally {
      await proxy.close();
    }
    for (const session of sessions) {
      expect(await repository.findBySessionId(session.sessionId)).toMatchObject({
        revokedReason: 'password_changed',
      });
    }
  });
});

describe('revoke-all on a failing store (a worker in this process, real BullMQ on real Redis)', () => {
  it('the job fails while the repository rejects, BullMQ retries it with backoff, and once the store is back it completes and the records are revoked', async () => {
    const bed = await openWorkerTestBed(QUEUE_NAMES.revokeAll, 'rr_revoke_retry');
    const outage = withOutage(bed.repository);
    const jobs = new BullMQTokenJobs({ connection: redisUrl(), prefix: bed.prefix });
    const workerRedis = openTestRedis();
    let workers: TokenWorkers | undefined;
    try {
      const createdAt = new Date(Date.now() - 60_000);
      const records = await Promise.all(
        [1, 2].map(() => bed.repository.save(aNewRecord({ userId: 'erin', createdAt }))),
      );
      outage.fail();
      workers = await startTokenWorkers({
        repository: outage.repository,
        connection: workerRedis,
        prefix: bed.prefix,
        concurrency: 1,
        scheduleCleanup: false,
        logger: pino({ level: 'silent' }),
      });
      const request = { userId: 'erin', reason: 'password_changed', requestedAt: new Date() };
      await jobs.revokeAll(request);
      const jobId = revokeAllJobId(request);

      const retrying = await waitFor(() => bed.queue.getJob(jobId), {
        what: 'the job to fail twice and wait for its next attempt',
        until: (job) => (job?.attemptsMade ?? 0) >= 2,
      });
      expect(await retrying!.getState()).toBe('delayed');
      expect(retrying!.failedReason).toMatch(/closed/);
      for (const record of records) {
        expect(await bed.repository.findById(record.id)).toMatchObject({ revokedAt: null });
      }

      outage.recover();
      const done = await waitFor(
        async () => {
          const job = await bed.queue.getJob(jobId);
          return job?.finishedOn ? job : undefined;
        },
        { what: 'the retried job to finish', timeoutMs: 30_000 },
      );
      expect(await done.getState()).toBe('completed');
      expect(done.returnvalue).toEqual({ revoked: 2 });
      expect(done.attemptsMade).toBeGreaterThanOrEqual(3);
      expect(outage.refused.length).toBe(done.attemptsMade - 1);
      for (const record of records) {
        expect(await bed.repository.findById(record.id)).toMatchObject({
          revokedAt: request.requestedAt,
          revokedReason: 'password_changed',
        });
      }
    } finally {
      await workers?.close(5_000);
      workerRedis.disconnect();
      await jobs.close();
      await bed.close();
    }
  });
});
