/**
 * With the MongoDB-wire server stopped mid-test, the adapters reject with `store_unavailable`
 * within the connection's configured timeout instead of hanging, and work again once the server is
 * back. Uses its own server (startRestartable), not the shared one.
 */
import mongoose, { type Connection } from 'mongoose';
import { MongooseRefreshTokenRepository, MongooseVersionStore } from '../../src/adapters/mongoose';
import { StoreUnavailableError } from '../../src/domain/errors';
import { aNewRecord, aRotation } from '../support/builders';
import { freePort, startRestartable, type RestartableServer } from '../support/servers';

/** The recommended fail-fast setting (the driver's default is 30 s). */
const SERVER_SELECTION_TIMEOUT_MS = 1_000;
/** Slack for the driver's retry, the event loop and a busy machine. */
const SLACK_MS = 1_500;

let server: RestartableServer;
let connection: Connection;

beforeAll(async () => {
  server = await startRestartable('mongo');
  connection = await mongoose
    .createConnection(server.url, {
      dbName: 'outage',
      serverSelectionTimeoutMS: SERVER_SELECTION_TIMEOUT_MS,
      connectTimeoutMS: 1_000,
      socketTimeoutMS: 5_000,
    })
    .asPromise();
});

afterAll(async () => {
  await connection?.close();
  await server?.remove();
});

/** The rejection of `work()` and how long it took. */
async function timedFailure(work: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  try {
    await work();
  } catch (error) {
    return { error, ms: performance.now() - started };
  }
  throw new Error('expected the call to reject while the server is stopped');
}

it('with the server stopped, repository and version-store calls reject with store_unavailable within the timeout, and work again after a restart', async () => {
  const repository = new MongooseRefreshTokenRepository(connection);
  await repository.ensureIndexes();
  const versions = new MongooseVersionStore(connection);
  const record = await repository.save(aNewRecord());
  expect(await versions.bumpUserMinVersion(record.userId)).toBe(1);

  await server.stop();

  const calls: Record<string, () => Promise<unknown>> = {
    findBySessionId: () => repository.findBySessionId(record.sessionId),
    rotate: () => repository.rotate(aRotation(record)),
    save: () => repository.save(aNewRecord()),
    revokeBySession: () => repository.revokeBySession(record.sessionId, 'logout'),
    getUserMinVersion: () => versions.getUserMinVersion(record.userId),
  };
  for (const [name, call] of Object.entries(calls)) {
    const { error, ms } = await timedFailure(call);
    expect({ name, error }).toEqual({ name, error: expect.any(StoreUnavailableError) });
    expect((error as StoreUnavailableError).code).toBe('store_unavailable');
    expect((error as Error).cause).toBeInstanceOf(mongoose.mongo.MongoError);
    expect(ms).toBeLessThan(SERVER_SELECTION_TIMEOUT_MS + SLACK_MS);
  }

  await server.restart();
  expect(await repository.findBySessionId(record.sessionId)).toEqual(record);
  expect(await versions.getUserMinVersion(record.userId)).toBe(1);
});

it('before the initial connection ever succeeds, calls reject with store_unavailable after bufferTimeoutMS instead of waiting forever', async () => {
  // bufferTimeoutMS is a documented createConnection option missing from Mongoose's ConnectOptions type.
  const unreachable = mongoose.createConnection(`mongodb://127.0.0.1:${await freePort()}`, {
    serverSelectionTimeoutMS: 500,
    bufferTimeoutMS: 1_000,
  } as mongoose.ConnectOptions);
  const initial = unreachable.asPromise().catch((error: unknown) => error);
  try {
    const repository = new MongooseRefreshTokenRepository(unreachable);
    const versions = new MongooseVersionStore(unreachable);
    for (const call of [
      () => repository.findBySessionId('0'.repeat(32)),
      () => repository.revokeBySession('0'.repeat(32), 'logout'),
      () => versions.getGlobal(),
    ]) {
      const { error, ms } = await timedFailure(call);
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(ms).toBeLessThan(1_000 + SLACK_MS);
    }
    expect(await initial).toBeInstanceOf(Error);
  } finally {
    await unreachable.close();
  }
});
