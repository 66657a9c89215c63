/**
 * `MemoryDPoPReplayCache` keeps the `DPoPReplayCache` promises: the first claim of a key wins,
 * later ones within the TTL lose, the key is free again once it expired, and a full cache refuses
 * (rejects) rather than forgetting a live key early. The Redis adapter keeps the same promises
 * in test/redis/dpop-replay.test.ts.
 */
import { MemoryDPoPReplayCache } from '../../src/adapters/memory';
import { OptionsError, StoreUnavailableError } from '../../src/domain/errors';
import { FakeClock } from '../support/fake-clock';

describe('MemoryDPoPReplayCache', () => {
  it('answers true for the first claim of a key and false for every claim within its TTL', async () => {
    const clock = new FakeClock();
    const cache = new MemoryDPoPReplayCache({ clock });
    expect(await cache.claim('a', 120_000)).toBe(true);
    expect(await cache.claim('a', 120_000)).toBe(false);
    expect(await cache.claim('b', 120_000)).toBe(true);
    clock.advance(119_999);
    expect(await cache.claim('a', 120_000)).toBe(false);
  });

  it('forgets a key once its TTL has passed', async () => {
    const clock = new FakeClock();
    const cache = new MemoryDPoPReplayCache({ clock });
    await cache.claim('a', 1_000);
    clock.advance(1_000);
    expect(await cache.claim('a', 1_000)).toBe(true);
  });

  it('lets exactly one of many concurrent claims of a key win', async () => {
    const cache = new MemoryDPoPReplayCache();
    const results = await Promise.all(Array.from({ length: 50 }, () => cache.claim('k', 60_000)));
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('sweeps expired keys so its size stays bounded by the live ones', async () => {
    const clock = new FakeClock();
    const cache = new MemoryDPoPReplayCache({ clock, maxEntries: 10 });
    for (let round = 0; round < 100; round += 1) {
      expect(await cache.claim(`k${round}`, 1_000)).toBe(true);
      clock.advance(200);
    }
    expect(cache.size).toBeLessThanOrEqual(6);
  });

  it('when full of live keys, rejects with StoreUnavailableError instead of forgetting one early', async () => {
    const clock = new FakeClock();
    const cache = new MemoryDPoPReplayCache({ clock, maxEntries: 2 });
    await cache.claim('a', 60_000);
    await cache.claim('b', 60_000);
    await expect(cache.claim('c', 60_000)).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(await cache.claim('a', 60_000)).toBe(false);
    clock.advance(60_000);
    expect(await cache.claim('c', 60_000)).toBe(true);
  });

  it.each([0, -1, 1.5, Number.NaN])('refuses maxEntries %p', (maxEntries) => {
    expect(() => new MemoryDPoPReplayCache({ maxEntries })).toThrow(OptionsError);
  });
});
