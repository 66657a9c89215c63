/**
 * Redis down: the service revokes inline and refreshes as usual (the producer fails fast instead
 * of hanging); the worker process reports itself degraded, and resumes by itself once Redis is back.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { BullMQTokenJobs, CLEANUP_SCHEDULER_ID, QUEUE_NAMES } from '../../src/adapters/bullmq';
import { revokeAllJobId } from '../../src/adapters/bullmq/jobs';
import { MongooseRefreshTokenRepository, MongooseVersionStore } from '../../src/adapters/mongoose';
import type { AuditEvent } from '../../src/options';
import { RotationService } from '../../src/rotation-service';
import { startRedis, type ServerHandle } from '../support/servers';
import { mongoUri, openTestDatabase } from '../support/services';
import {
  databaseUri,
  startWorkerProcess,
  uniquePrefix,
  type WorkerProcess,
} from '../support/worker-process';
import { waitFor } from '../support/wait-for';

jest.setTimeout(120_000);

describe('a Redis outage', () => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  let redisServer: ServerHandle;
  let jobs: BullMQTokenJobs;
  let worker: WorkerProcess;

  beforeEach(async () => {
    db = await openTestDatabase();
    redisServer = await startRedis();
  });

  afterEach(async () => {
    await worker?.stop();
    await jobs?.close();
    await redisServer.stop();
    await db.close();
  });

  it('revokes inline and keeps refreshing while Redis is down; the worker resumes by itself when it is back', async () => {
    const repository = new MongooseRefreshTokenRepository(db.connection);
    await repository.ensureIndexes();
    const prefix = uniquePrefix('rr_outage');
    jobs = new BullMQTokenJobs({ connection: redisServer.url, prefix, enqueueTimeout: '1s' });
    const audit: AuditEvent[] = [];
    const service = new RotationService({
      repository,
      versions: new MongooseVersionStore(db.connection),
      jobs,
      accessToken: { secret: 'a'.repeat(32) },
      refreshToken: { secrets: ['r'.repeat(32)] },
      onAuditEvent: (event) => audit.push(event),
    });
    worker = startWorkerProcess({
      MONGODB_URI: databaseUri(mongoUri(), db.dbName),
      REDIS_URL: redisServer.url,
      QUEUE_PREFIX: prefix,
      WORKER_HEALTH_PORT: '0',
    });
    const { healthPort } = await worker.ready();
    const health = async () => {
      const response = await fetch(`http://127.0.0.1:${healthPort}/healthz`, {
        signal: AbortSignal.timeout(5_000),
      });
      return {
        status: response.status,
        body: (await response.json()) as { status: string; redis: string },
      };
    };
    expect(await health()).toMatchObject({ status: 200, body: { status: 'ok', redis: 'ready' } });
    const erin = await Promise.all([1, 2].map(() => service.issue({ userId: 'erin' })));
    const frank = await service.issue({ userId: 'frank' });

    await redisServer.stop();

    const started = performance.now();
    await service.revokeAllForUser('erin', 'password_changed');
    const revokeMs = performance.now() - started;
    expect(audit.find((e) => e.type === 'user.revoked_all')).toMatchObject({
      userId: 'erin',
      inline: true,
    });
    expect(revokeMs).toBeLessThan(2_000);
    for (const session of erin) {
      expect(await repository.findBySessionId(session.sessionId)).toMatchObject({
        revokedReason: 'password_changed',
      });
      await expect(service.refresh(session.refreshToken)).rejects.toMatchObject({
        code: 'invalid_grant',
      });
    }
    const refreshed = await service.refresh(frank.refreshToken);
    expect(refreshed.sessionId).toBe(frank.sessionId);
    await service.touch(frank.sessionId);
    expect(service.droppedTouches).toBe(1);
    expect(jobs.stats()).toMatchObject({ revokeAllFailed: 1, touchesDropped: 1 });
    await waitFor(
      async () => {
        const report = await health();
        return report.status === 503 && report.body.redis !== 'ready';
      },
      { what: 'the worker to report itself degraded' },
    );

    redisServer = await startRedis({ port: redisServer.port });

    await waitFor(async () => (await health()).status === 200, {
      what: 'the worker to report itself healthy again',
      timeoutMs: 30_000,
    });
    const request = { userId: 'frank', reason: 'user_requested', requestedAt: new Date() };
    await waitFor(
      () =>
        jobs.revokeAll(request).then(
          () => true,
          () => false,
        ),
      { what: 'the producer to reach Redis again' },
    );
    const client = new Redis(redisServer.url, { maxRetriesPerRequest: null });
    const queue = new Queue(QUEUE_NAMES.revokeAll, { connection: client, prefix });
    const cleanupQueue = new Queue(QUEUE_NAMES.cleanup, { connection: client, prefix });
    try {
      const job = await waitFor(
        async () => {
          const found = await queue.getJob(revokeAllJobId(request));
          return found?.finishedOn ? found : undefined;
        },
        { what: 'the worker to run the new job' },
      );
      expect(job.returnvalue).toEqual({ revoked: 1 });
      expect(await repository.findBySessionId(frank.sessionId)).toMatchObject({
        revokedReason: 'user_requested',
      });
      // The restarted Redis had no data: the worker upserted the cleanup scheduler again.
      expect((await cleanupQueue.getJobSchedulers()).map((scheduler) => scheduler.key)).toEqual([
        CLEANUP_SCHEDULER_ID,
      ]);
    } finally {
      await queue.close();
      await cleanupQueue.close();
      client.disconnect();
    }
  });
});
