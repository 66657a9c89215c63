/**
 * DPoP on the real Redis: `RedisDPoPReplayCache` keeps the `DPoPReplayCache` promises (first claim
 * wins, across clients too; keys expire; the caller's client is left open), and a proof replayed
 * to a second instance sharing the Redis is refused.
 */
import { Redis } from 'ioredis';
import { RedisDPoPReplayCache } from '../../src/adapters/redis';
import { OptionsError, StoreUnavailableError } from '../../src/domain/errors';
import { startFreezableProxy } from '../support/freezable-proxy';
import { openTestRedis, redisUrl, uniqueName } from '../support/services';

describe('RedisDPoPReplayCache', () => {
  const connections: Redis[] = [];
  function client(): Redis {
    const connection = openTestRedis();
    connections.push(connection);
    return connection;
  }

  afterAll(() => {
    for (const connection of connections) connection.disconnect();
  });

  it('lets the first claim of a key win and refuses it on every client sharing the Redis', async () => {
    const prefix = `${uniqueName('rr_dpop')}:`;
    const a = new RedisDPoPReplayCache({ connection: client(), prefix });
    const b = new RedisDPoPReplayCache({ connection: client(), prefix });
    expect(await a.claim('k1', 60_000)).toBe(true);
    expect(await b.claim('k1', 60_000)).toBe(false);
    expect(await a.claim('k1', 60_000)).toBe(false);
    expect(await b.claim('k2', 60_000)).toBe(true);
  });

  it('lets exactly one of concurrent claims on two clients win', async () => {
    const prefix = `${uniqueName('rr_dpop')}:`;
    const caches = [client(), client()].map(
      (connection) => new RedisDPoPReplayCache({ connection, prefix }),
    );
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => caches[i % 2]!.claim('race', 60_000)),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('stores one prefixed key with the TTL, which then expires by itself', async () => {
    const connection = client();
    const prefix = `${uniqueName('rr_dpop')}:`;
    const cache = new RedisDPoPReplayCache({ connection, prefix });
    expect(await cache.claim('short', 150)).toBe(true);
    const ttl = await connection.pttl(`${prefix}short`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(150);
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await cache.claim('short', 150)).toBe(true);
  });

  it('rejects with StoreUnavailableError when Redis stalls, and leaves the client open and working', async () => {
    const proxy = await startFreezableProxy(Number(new URL(redisUrl()).port));
    const connection = new Redis({
      port: proxy.port,
      host: '127.0.0.1',
      maxRetriesPerRequest: null,
    });
    connections.push(connection);
    const cache = new RedisDPoPReplayCache({
      connection,
      prefix: `${uniqueName('rr_dpop')}:`,
      timeoutMs: 100,
    });
    try {
      expect(await cache.claim('before', 60_000)).toBe(true);
      proxy.freeze();
      await expect(cache.claim('stalled', 60_000)).rejects.toBeInstanceOf(StoreUnavailableError);
      proxy.thaw();
      expect(await connection.ping()).toBe('PONG');
      expect(connection.status).toBe('ready');
    } finally {
      connection.disconnect();
      await proxy.close();
    }
  });

  it('refuses a missing client and a bad timeout with OptionsError', () => {
    expect(() => new RedisDPoPReplayCache({ connection: {} as never })).toThrow(OptionsError);
    expect(() => new RedisDPoPReplayCache({ connection: client(), timeoutMs: 0 })).toThrow(
      OptionsError,
    );
  });
});
