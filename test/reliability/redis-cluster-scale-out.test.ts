/**
 * Issue 16, item 7: scale-out on a Redis Cluster. Two app instances and two workers, each on its
 * own MongoDB and Redis connections as separate processes would be, share one MongoDB-wire server
 * and a three-master Redis Cluster started for this file, with the queue prefix hash-tagged. The
 * instances keep the production caches (versions and session states for one second) and learn of
 * revocations through the `RedisRevocationBus` on the cluster.
 *
 * - A logout-all answered by instance A refuses the session on instance B at once, its access
 *   token (with `checkRevocation`) and its refresh token alike, although B had it cached.
 * - Every job is completed exactly once across the two workers (counted by job id).
 * - The cleanup scheduler, upserted by both workers, runs once per tick of its schedule.
 */
import express, { type Express } from 'express';
import { Cluster } from 'ioredis';
import type { Connection } from 'mongoose';
import request from 'supertest';
import { BullMQTokenJobs } from '../../src/adapters/bullmq';
import { authenticate, createRefreshRouter, errorHandler } from '../../src/adapters/express';
import { MongooseRefreshTokenRepository, MongooseVersionStore } from '../../src/adapters/mongoose';
import { RedisRevocationBus } from '../../src/adapters/redis';
import { RotationService } from '../../src/rotation-service';
import {
  startTokenWorkers,
  type JobFinishedEvent,
  type TokenWorkers,
} from '../../src/adapters/bullmq-worker';
import { startRedisCluster, type RedisClusterHandle } from '../support/servers';
import { mongoUri, openTestDatabase, uniqueName } from '../support/services';
import { waitFor } from '../support/wait-for';
import mongoose from 'mongoose';
import { silentLogger } from '../support/app-harness';

const USERS = 12;
const SECRETS = {
  access: 'cluster-access-secret-0123456789abcdef012345',
  refresh: 'cluster-refresh-secret-0123456789abcdef01234',
};

interface Instance {
  name: string;
  app: Express;
  service: RotationService;
  close(): Promise<void>;
}

interface Finished extends JobFinishedEvent {
  worker: string;
}

describe('two app instances and two workers on a three-master Redis Cluster', () => {
  let cluster: RedisClusterHandle;
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let prefix: string;
  const connections: Connection[] = [];
  const clients: Cluster[] = [];
  const finished: Finished[] = [];
  let a: Instance;
  let b: Instance;
  let workers: TokenWorkers[] = [];

  function openCluster(options: { worker: boolean }): Cluster {
    const client = new Cluster(cluster.nodes, {
      redisOptions: options.worker
        ? { maxRetriesPerRequest: null }
        : { maxRetriesPerRequest: 1, connectTimeout: 2_000 },
      enableOfflineQueue: true,
    });
    client.on('error', () => undefined);
    clients.push(client);
    return client;
  }

  async function openMongo(): Promise<Connection> {
    const connection = await mongoose
      .createConnection(mongoUri(), { dbName: database.dbName })
      .asPromise();
    connections.push(connection);
    return connection;
  }

  async function startInstance(name: string): Promise<Instance> {
    const connection = await openMongo();
    const redis = openCluster({ worker: false });
    const jobs = new BullMQTokenJobs({
      connection: redis,
      prefix,
      touchWindow: '100ms',
      coalesceInterval: 0,
    });
    const revocationBus = new RedisRevocationBus({
      connection: redis,
      channel: `${prefix}:revocations`,
    });
    await revocationBus.ready();
    const service = new RotationService({
      repository: new MongooseRefreshTokenRepository(connection),
      versions: new MongooseVersionStore(connection),
      jobs,
      revocationBus,
      accessToken: { algorithm: 'HS256', secret: SECRETS.access },
      refreshToken: { secrets: [SECRETS.refresh] },
    });
    const app = express();
    app.use('/auth', createRefreshRouter({ service, logger: silentLogger }));
    app.get(
      '/me',
      authenticate({
        service,
        checkRevocation: { sessions: true },
        trackActivity: true,
        logger: silentLogger,
      }),
      (req, res) => void res.json({ userId: req.auth!.userId }),
    );
    app.use(errorHandler({ logger: silentLogger }));
    return {
      name,
      app,
      service,
      async close() {
        await jobs.close();
        await revocationBus.close();
      },
    };
  }

  async function startWorker(name: string): Promise<TokenWorkers> {
    const connection = await openMongo();
    return startTokenWorkers({
      repository: new MongooseRefreshTokenRepository(connection),
      connection: openCluster({ worker: true }),
      prefix,
      concurrency: 4,
      cleanup: { cron: '* * * * * *' },
      logger: silentLogger,
      onJobFinished: (event) => void finished.push({ ...event, worker: name }),
    });
  }

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    database = await openTestDatabase();
    prefix = `{${uniqueName('rr_cluster')}}`;
    a = await startInstance('A');
    b = await startInstance('B');
    await new MongooseRefreshTokenRepository(connections[0]!).ensureIndexes();
    workers = [await startWorker('worker-1'), await startWorker('worker-2')];
  }, 60_000);

  afterAll(async () => {
    await Promise.all(workers.map((worker) => worker.close(5_000)));
    await a?.close();
    await b?.close();
    await Promise.all(clients.map((client) => client.quit().catch(() => client.disconnect())));
    await Promise.all(connections.map((connection) => connection.close()));
    await database?.close();
    await cluster?.stop();
  }, 30_000);

  it('refuses on B, at once, a session logged out everywhere on A; each job runs once; cleanup once per tick', async () => {
    const started = Date.now();
    const userIds = Array.from({ length: USERS }, (_, index) => `cluster-user-${index}`);
    for (const userId of userIds) {
      const tokens = await a.service.issue({ userId });
      const bearer = `Bearer ${tokens.accessToken}`;
      // B caches the user's version and the session's state.
      expect((await request(b.app).get('/me').set('Authorization', bearer)).status).toBe(200);

      const out = await request(a.app).post('/auth/logout-all').set('Authorization', bearer);
      expect(out.status).toBe(204);

      const me = await request(b.app).get('/me').set('Authorization', bearer);
      expect(me.status).toBe(401);
      const refreshed = await request(b.app)
        .post('/auth/token')
        .send({ refresh_token: tokens.refreshToken });
      expect(refreshed.status).toBe(400);
      expect(refreshed.body.error).toBe('invalid_grant');
    }

    // Every revoke-all job completes once, whichever worker took it, and revokes the records.
    const revokeAlls = await waitFor(
      async () => {
        const done = finished.filter((event) => event.queue === 'revoke-all');
        return done.length >= USERS && done;
      },
      { what: 'every revoke-all job completed' },
    );
    for (const userId of userIds) {
      await waitFor(
        async () => {
          const sessions = await a.service.listSessions(userId);
          return sessions.length === 0;
        },
        { what: `the records of ${userId} revoked` },
      );
    }
    // Let the touches (two 100 ms windows) and a few cleanup ticks run.
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    const touches = finished.filter((event) => event.queue === 'touch');
    const cleanups = finished.filter((event) => event.queue === 'cleanup');

    const byId = (events: Finished[]) => events.map((event) => event.jobId);
    const duplicates = (ids: Array<string | undefined>) =>
      ids.filter((id, index) => ids.indexOf(id) !== index);
    expect(revokeAlls.every((event) => event.outcome === 'completed')).toBe(true);
    expect(duplicates(byId(finished.filter((event) => event.outcome === 'completed')))).toEqual([]);
    expect(new Set(byId(revokeAlls)).size).toBe(USERS);
    expect(touches.length).toBeGreaterThan(0);

    // The scheduler's job ids carry the tick; one job per tick, whichever worker ran it.
    expect(cleanups.length).toBeGreaterThanOrEqual(2);
    const ticks = cleanups.map((event) => event.jobId);
    expect(duplicates(ticks)).toEqual([]);
    const elapsedSeconds = (Date.now() - started) / 1_000;
    expect(cleanups.length).toBeLessThanOrEqual(Math.ceil(elapsedSeconds) + 1);
  }, 60_000);
});
