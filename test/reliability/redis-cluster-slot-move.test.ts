/**
 * `RedisRevocationBus` on a three-master Redis Cluster when resharding moves the channel's slot to
 * another master. The old owner unsubscribes the bus's connection; from then on a notice is
 * published on the new owner. `sync()` promises that when it answers true, every notice published
 * before it was called has been heard: it must not keep answering true from the old node, and the
 * bus must follow the slot so that notices are heard again.
 */
import { Cluster, Redis } from 'ioredis';
import { RedisRevocationBus } from '../../src/adapters/redis';
import type { RevocationSignal } from '../../src/domain/revocation-bus';
import { startRedisCluster, type RedisClusterHandle } from '../support/servers';
import { uniqueName } from '../support/services';
import { waitFor } from '../support/wait-for';

describe('RedisRevocationBus when resharding moves its channel to another master', () => {
  let cluster: RedisClusterHandle;
  let client: Cluster;
  let bus: RedisRevocationBus;
  const nodes: Redis[] = [];
  const signals: RevocationSignal[] = [];
  const channel = `{${uniqueName('rr_move')}}:revocations`;

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    client = new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 1 } });
    client.on('error', () => undefined);
    for (const { host, port } of cluster.nodes) nodes.push(new Redis({ host, port }));
    bus = new RedisRevocationBus({ connection: client, channel });
    bus.subscribe((signal) => void signals.push(signal));
    await bus.ready();
  }, 60_000);

  afterAll(async () => {
    await bus?.close();
    await client?.quit().catch(() => client.disconnect());
    await Promise.all(nodes.map((node) => node.quit().catch(() => node.disconnect())));
    await cluster?.stop();
  }, 30_000);

  /** Move `slot` from its owner to another master, the way a resharding tool ends a migration. */
  async function moveSlot(slot: number): Promise<void> {
    const ids = await Promise.all(nodes.map((node) => node.cluster('MYID') as Promise<string>));
    const owners = await Promise.all(
      nodes.map(async (node) => (await node.cluster('COUNTKEYSINSLOT', slot)) as number),
    );
    expect(owners).toEqual([0, 0, 0]); // nothing to migrate: the channel owns no keys
    const slots = await nodes[0]!.cluster('SLOTS');
    const [, , master] = slots.find(([first, last]) => first <= slot && slot <= last)!;
    const from = cluster.nodes.findIndex((node) => node.port === master![1]);
    const to = (from + 1) % nodes.length;
    await nodes[to]!.cluster('SETSLOT', slot, 'IMPORTING', ids[from]!);
    await nodes[from]!.cluster('SETSLOT', slot, 'MIGRATING', ids[to]!);
    for (const node of [nodes[to]!, nodes[from]!, ...nodes])
      await node.cluster('SETSLOT', slot, 'NODE', ids[to]!);
  }

  it('drops the caches, follows the slot to its new owner, and hears notices there', async () => {
    const heard = (userId: string) =>
      signals.some((signal) => signal.kind === 'user' && signal.userId === userId);
    await bus.publish({ kind: 'user', userId: 'before-move' });
    expect(await bus.sync()).toBe(true);
    expect(heard('before-move')).toBe(true);

    const resyncs = () => signals.filter((signal) => signal.kind === 'resync').length;
    const resyncsBefore = resyncs();
    await moveSlot(Number(await client.cluster('KEYSLOT', channel)));

    await waitFor(() => resyncs() > resyncsBefore, {
      what: 'the bus to drop every cache when the old owner unsubscribes it',
    });
    // Nothing is published through the client until the bus is back, so the client's slot map
    // is as stale as it was: the bus must find the new owner by itself.
    await waitFor(() => bus.sync(), {
      what: "the bus to subscribe on the slot's new owner",
      timeoutMs: 15_000,
    });
    for (const userId of ['after-move-1', 'after-move-2']) {
      await bus.publish({ kind: 'user', userId });
      expect(await bus.sync()).toBe(true);
      expect(heard(userId)).toBe(true);
    }
  });
});
