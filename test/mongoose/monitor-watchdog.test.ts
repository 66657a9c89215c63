/**
 * The monitor watchdog (src/adapters/mongoose/monitor-watchdog.ts) on a real driver and server.
 * The driver bug it guards against (a heartbeat that never ends) cannot be caused on demand, so a
 * TCP proxy in front of the real server holds the heartbeat's bytes instead: from the outside the
 * two look the same, a heartbeat that started and neither succeeded nor failed.
 */
import mongoose, { type Connection } from 'mongoose';
import {
  MongooseRefreshTokenRepository,
  reopenWhenMonitorStuck,
  type StuckHeartbeat,
} from '../../src/adapters/mongoose';
import { watchServerHeartbeats } from '../../src/adapters/mongoose/monitor-watchdog';
import { OptionsError } from '../../src/domain/errors';
import { aNewRecord } from '../support/builders';
import { startFreezableProxy, type FreezableProxy } from '../support/freezable-proxy';
import { mongoUri, uniqueName } from '../support/services';
import { waitFor } from '../support/wait-for';

jest.setTimeout(30_000);

/** Frequent heartbeats, and a driver timeout far above the watchdog's, so the watchdog speaks first. */
const CONNECT_OPTIONS = {
  heartbeatFrequencyMS: 200,
  connectTimeoutMS: 10_000,
  serverSelectionTimeoutMS: 10_000,
};
const WATCHDOG_MS = 400;

async function until(what: string, check: () => boolean): Promise<void> {
  await waitFor(check, { what, timeoutMs: 10_000, intervalMs: 20 });
}

describe('monitor watchdog', () => {
  let proxy: FreezableProxy;
  let uri: string;
  let connection: Connection;

  beforeEach(async () => {
    proxy = await startFreezableProxy(Number(new URL(mongoUri()).port));
    uri = `mongodb://127.0.0.1:${proxy.port}/${uniqueName('rr_watchdog')}`;
    connection = await mongoose.createConnection(uri, CONNECT_OPTIONS).asPromise();
  });

  afterEach(async () => {
    proxy.thaw();
    await connection.dropDatabase().catch(() => undefined);
    await connection.close();
    await proxy.close();
  });

  it('refuses a bad timeout, retry delay or URI with an OptionsError', () => {
    const onStuck = () => undefined;
    expect(() => watchServerHeartbeats(connection, { timeoutMs: 0, onStuck })).toThrow(
      OptionsError,
    );
    expect(() => reopenWhenMonitorStuck(connection, { uri, retryDelayMs: -1 })).toThrow(
      /retryDelayMs must be a positive number/,
    );
    expect(() => reopenWhenMonitorStuck(connection, { uri: '' })).toThrow(OptionsError);
  });

  it('stays quiet while heartbeats end in time', async () => {
    const stuck: StuckHeartbeat[] = [];
    const stop = watchServerHeartbeats(connection, {
      timeoutMs: WATCHDOG_MS,
      onStuck: (s) => stuck.push(s),
    });
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    stop();
    expect(stuck).toEqual([]);
  });

  it('reports a heartbeat that does not end, once', async () => {
    const stuck: StuckHeartbeat[] = [];
    const stop = watchServerHeartbeats(connection, {
      timeoutMs: WATCHDOG_MS,
      onStuck: (s) => stuck.push(s),
    });
    proxy.freeze();
    await until('a stuck heartbeat', () => stuck.length > 0);
    await new Promise((resolve) => setTimeout(resolve, 3 * WATCHDOG_MS));
    stop();
    expect(stuck).toHaveLength(1);
    expect(stuck[0]!.address).toBe(`127.0.0.1:${proxy.port}`);
    expect(stuck[0]!.pendingMs).toBeGreaterThanOrEqual(WATCHDOG_MS);
  });

  it('reopens the connection on a stuck heartbeat; the repository on it works again', async () => {
    const repository = new MongooseRefreshTokenRepository(connection);
    await repository.ensureIndexes();
    const before = await repository.save(aNewRecord());
    const firstClient = connection.getClient();
    const seen: string[] = [];
    const stop = reopenWhenMonitorStuck(connection, {
      uri,
      connectOptions: CONNECT_OPTIONS,
      timeoutMs: WATCHDOG_MS,
      onStuck: () => seen.push('stuck'),
      onReopened: () => seen.push('reopened'),
    });
    try {
      proxy.freeze();
      await until('the stuck heartbeat', () => seen.includes('stuck'));
      proxy.thaw();
      await until('the connection to reopen', () => seen.includes('reopened'));
      expect(connection.getClient()).not.toBe(firstClient);
      expect((await repository.findBySessionId(before.sessionId))?.id).toBe(before.id);
      // And it watches the new client: a second stall is caught too.
      proxy.freeze();
      await until(
        'the second stuck heartbeat',
        () => seen.filter((s) => s === 'stuck').length === 2,
      );
      proxy.thaw();
      await until('the second reopen', () => seen.filter((s) => s === 'reopened').length === 2);
      expect((await repository.findById(before.id))?.sessionId).toBe(before.sessionId);
    } finally {
      stop();
    }
  });
});
