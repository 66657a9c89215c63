/**
 * `startTokenWorkers` as a user of `refresh-rotation/worker` calls it: on their Mongoose connection
 * and a Redis URL, with every other setting defaulted. It processes jobs, reports health with the
 * MongoDB state, and its `close()` is idempotent and closes the Redis client it created.
 */
import { Redis } from 'ioredis';
import { BullMQTokenJobs } from '../../src/adapters/bullmq';
import { MongooseRefreshTokenRepository } from '../../src/adapters/mongoose';
import { OptionsError } from '../../src/domain/errors';
import { startTokenWorkers, type WorkerLogger } from '../../src/adapters/bullmq-worker';
import { aNewRecord } from '../support/builders';
import { openTestDatabase, redisUrl } from '../support/services';
import { uniquePrefix } from '../support/worker-process';
import { waitFor } from '../support/wait-for';

const quiet: WorkerLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

describe('startTokenWorkers on a Mongoose connection and Redis options', () => {
  it('revokes through a job, reports health, and closes once however often it is called', async () => {
    const database = await openTestDatabase();
    const prefix = uniquePrefix('start');
    const jobs = new BullMQTokenJobs({ connection: redisUrl(), prefix });
    const { hostname, port } = new URL(redisUrl());
    const connectionName = `rr-start-${prefix.slice(1, -1)}`;
    const workers = await startTokenWorkers({
      mongoose: database.connection,
      connection: { host: hostname, port: Number(port), connectionName },
      prefix,
      logger: quiet,
    });
    try {
      expect(await clientsNamed(connectionName)).toBeGreaterThan(0);
      expect(await workers.health()).toMatchObject({
        status: 'ok',
        redis: 'ready',
        mongodb: 'connected',
      });
      const repository = new MongooseRefreshTokenRepository(database.connection);
      const record = await repository.save(
        aNewRecord({ userId: 'user-1', createdAt: new Date(Date.now() - 1_000) }),
      );
      await jobs.revokeAll({
        userId: 'user-1',
        reason: 'password_changed',
        requestedAt: new Date(),
      });
      await waitFor(
        async () => Boolean((await repository.findBySessionId(record.sessionId))?.revokedAt),
        { what: 'the record revoked by the job' },
      );
    } finally {
      const first = workers.close(5_000);
      expect(workers.close()).toBe(first);
      const report = await first;
      expect(report.forced).toBe(false);
      expect((await workers.health()).status).toBe('stopping');
      await jobs.close();
      await database.close();
    }
    expect(await clientsNamed(connectionName)).toBe(0);
  });

  it('refuses options without a store or without Redis, naming what to give', async () => {
    await expect(startTokenWorkers({ connection: redisUrl() })).rejects.toThrow(OptionsError);
    await expect(startTokenWorkers({ connection: redisUrl() })).rejects.toThrow(/mongoose/);
    const database = await openTestDatabase();
    try {
      await expect(startTokenWorkers({ mongoose: database.connection } as never)).rejects.toThrow(
        /connection: a Redis URL/,
      );
      await expect(
        startTokenWorkers({
          mongoose: database.connection,
          connection: redisUrl(),
          concurrency: 0,
        }),
      ).rejects.toThrow(/concurrency must be a positive integer/);
    } finally {
      await database.close();
    }
  });
});

/** Clients connected to the test Redis right now under `name`. */
async function clientsNamed(name: string): Promise<number> {
  const probe = new Redis(redisUrl());
  try {
    const list = (await probe.client('LIST')) as string;
    return list.split('\n').filter((line) => line.includes(` name=${name} `)).length;
  } finally {
    probe.disconnect();
  }
}
