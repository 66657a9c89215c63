/**
 * `RedisRevocationBus` on the real Redis: notices reach every instance's listeners, `sync()` orders
 * a reader after notices already published, garbage on the channel is ignored, and closing the
 * bus closes only its own subscriber connection, never the caller's.
 */
import { Redis } from 'ioredis';
import { RedisRevocationBus } from '../../src/adapters/redis';
import { OptionsError } from '../../src/domain/errors';
import type { RevocationSignal } from '../../src/domain/revocation-bus';
import { startFreezableProxy } from '../support/freezable-proxy';
import { openTestRedis, redisUrl, uniqueName } from '../support/services';
import { waitFor } from '../support/wait-for';

describe('RedisRevocationBus', () => {
  const connections: Redis[] = [];
  const buses: RedisRevocationBus[] = [];

  function open(channel: string): { bus: RedisRevocationBus; heard: RevocationSignal[] } {
    const connection = openTestRedis();
    connections.push(connection);
    const bus = new RedisRevocationBus({ connection, channel });
    buses.push(bus);
    const heard: RevocationSignal[] = [];
    bus.subscribe((signal) => heard.push(signal));
    return { bus, heard };
  }

  afterAll(async () => {
    await Promise.all(buses.map((bus) => bus.close()));
    for (const connection of connections) connection.disconnect();
  });

  it('delivers each notice to every instance (the publisher’s own included), in order, by the time sync() resolves', async () => {
    const channel = uniqueName('rr_bus');
    const a = open(channel);
    const b = open(channel);
    await Promise.all([a.bus.ready(), b.bus.ready()]);
    for (let round = 0; round < 20; round += 1) {
      const before = b.heard.length;
      await a.bus.publish({ kind: 'session', sessionId: `s${round}` });
      expect(await b.bus.sync()).toBe(true);
      expect(b.heard.slice(before)).toEqual([{ kind: 'session', sessionId: `s${round}` }]);
    }
    await a.bus.publish({ kind: 'user', userId: 'alice' });
    await a.bus.publish({ kind: 'global' });
    await a.bus.sync();
    expect(a.heard.slice(-2)).toEqual([{ kind: 'user', userId: 'alice' }, { kind: 'global' }]);
  });

  it('ignores messages on the channel that are not notices, and says resync once it first subscribes', async () => {
    const channel = uniqueName('rr_bus');
    const { bus, heard } = open(channel);
    await bus.ready();
    const publisher = connections[connections.length - 1]!;
    for (const junk of ['not json', '{"kind":"user"}', '{"kind":"session","sessionId":7}', 'null'])
      await publisher.publish(channel, junk);
    await publisher.publish(channel, JSON.stringify({ kind: 'user', userId: 'bob' }));
    await bus.sync();
    // The resync on first subscribing: what was cached before, without the bus, is dropped.
    expect(heard).toEqual([{ kind: 'resync' }, { kind: 'user', userId: 'bob' }]);
  });

  it('while Redis stalls, sync() waits at most syncTimeoutMs once and then not at all; notices held meanwhile arrive when it is back', async () => {
    const channel = uniqueName('rr_bus');
    const proxy = await startFreezableProxy(Number(new URL(redisUrl()).port));
    const viaProxy = new Redis({ port: proxy.port, host: '127.0.0.1', maxRetriesPerRequest: null });
    connections.push(viaProxy);
    const bus = new RedisRevocationBus({ connection: viaProxy, channel, syncTimeoutMs: 100 });
    buses.push(bus);
    const heard: RevocationSignal[] = [];
    bus.subscribe((signal) => heard.push(signal));
    const publisher = open(channel).bus;
    try {
      await bus.ready();
      expect(heard).toEqual([{ kind: 'resync' }]); // on first subscribing
      heard.length = 0;
      proxy.freeze();
      await publisher.publish({ kind: 'user', userId: 'carol' });
      let started = performance.now();
      expect(await bus.sync()).toBe(false);
      expect(performance.now() - started).toBeGreaterThanOrEqual(90);
      started = performance.now();
      expect(await bus.sync()).toBe(false);
      expect(performance.now() - started).toBeLessThan(50);
      expect(heard).toEqual([]);
      proxy.thaw();
      await waitFor(() => heard.length > 0, {
        what: 'the notice held behind the frozen proxy',
        timeoutMs: 2_000,
      });
      expect(heard).toEqual([{ kind: 'user', userId: 'carol' }]);
      // Once the held PING is answered, sync() waits for its round trip again.
      await new Promise((resolve) => setTimeout(resolve, 200));
      await publisher.publish({ kind: 'global' });
      expect(await bus.sync()).toBe(true);
      expect(heard).toEqual([{ kind: 'user', userId: 'carol' }, { kind: 'global' }]);
    } finally {
      proxy.thaw();
      await bus.close();
      viaProxy.disconnect();
      await proxy.close();
    }
  });

  it('close() closes its own subscriber only: the caller’s connection keeps working', async () => {
    const connection = openTestRedis();
    connections.push(connection);
    const bus = new RedisRevocationBus({ connection, channel: uniqueName('rr_bus') });
    await bus.ready();
    await bus.close();
    await bus.close();
    expect(connection.status).toBe('ready');
    expect(await connection.ping()).toBe('PONG');
    // Closed: it cannot promise anything any more.
    await expect(bus.sync()).resolves.toBe(false);
  });

  it('refuses what is not an ioredis client or a bad option with an OptionsError', () => {
    expect(() => new RedisRevocationBus({ connection: {} as Redis })).toThrow(OptionsError);
    const connection = openTestRedis({ lazyConnect: true });
    connections.push(connection);
    expect(() => new RedisRevocationBus({ connection, channel: '' })).toThrow(/channel/);
    expect(() => new RedisRevocationBus({ connection, publishTimeoutMs: 0 })).toThrow(
      /publishTimeoutMs/,
    );
  });
});
