/**
 * How long an instance may trust cached revocation state (issue 14, items 6 and 7): two services
 * share one store, as two app instances share MongoDB. Revocations through a service clear its own
 * cache at once; one made elsewhere reaches another service's cache through the bus, or, when no
 * notice can be counted on, after the short fallback lifetime (1 s). The long lifetime applies
 * only while the bus says it is synced. The buses here are hand-written doubles of the port.
 */
import {
  MemoryRefreshTokenRepository,
  MemoryRevocationBus,
  MemoryVersionStore,
} from '../../src/adapters/memory';
import type { RevocationBus, RevocationSignal } from '../../src/domain/revocation-bus';
import type { RefreshRotationOptions } from '../../src/options';
import { RotationService } from '../../src/rotation-service';
import { FakeClock } from '../support/fake-clock';

const ACCESS_SECRET = 'unit-access-secret-0123456789abcdef0123456789';
const REFRESH_SECRET = 'unit-refresh-secret-0123456789abcdef012345678';

/** A bus that says it is synced (or not) and delivers nothing: only the cache lifetimes remain. */
function silentBus(synced: boolean): RevocationBus {
  return {
    publish: async () => undefined,
    subscribe: () => () => undefined,
    sync: async () => synced,
  };
}

function twoInstances(bus: (instance: 'a' | 'b') => RevocationBus | undefined) {
  const clock = new FakeClock();
  const repository = new MemoryRefreshTokenRepository({ clock });
  const versions = new MemoryVersionStore();
  const make = (instance: 'a' | 'b') => {
    const revocationBus = bus(instance);
    const options: RefreshRotationOptions = {
      repository,
      versions,
      clock,
      accessToken: { secret: ACCESS_SECRET },
      refreshToken: { secrets: [REFRESH_SECRET] },
      ...(revocationBus ? { revocationBus } : {}),
    };
    return new RotationService(options);
  };
  return { clock, a: make('a'), b: make('b') };
}

async function claimsOf(service: RotationService, userId: string) {
  const issued = await service.issue({ userId });
  return { ...service.verifyAccessToken(issued.accessToken), sessionId: issued.sessionId };
}

describe('revocation caches across two services on one store', () => {
  it('with a shared bus, a session revoked on A is refused on B at once, and a revoke-all too', async () => {
    const bus = new MemoryRevocationBus();
    const { a, b } = twoInstances(() => bus);
    const claims = await claimsOf(a, 'alice');
    expect(await b.isAccessTokenCurrent(claims, { sessions: true })).toBe(true);
    await a.revokeSession(claims.sid);
    expect(await b.isAccessTokenCurrent(claims, { sessions: true })).toBe(false);

    const other = await claimsOf(a, 'bob');
    expect(await b.isAccessTokenCurrent(other)).toBe(true);
    await a.revokeAllForUser('bob');
    expect(await b.isAccessTokenCurrent(other)).toBe(false);
  });

  it('while the bus is synced B trusts its cache up to ttlWithBus (notices carry the changes); a missed notice shows after five seconds', async () => {
    const { clock, a, b } = twoInstances(() => silentBus(true));
    const claims = await claimsOf(a, 'alice');
    expect(await b.isAccessTokenCurrent(claims, { sessions: true })).toBe(true);
    await a.revokeSession(claims.sid);
    clock.advance('4s');
    expect(await b.isAccessTokenCurrent(claims, { sessions: true })).toBe(true);
    clock.advance('1001ms');
    expect(await b.isAccessTokenCurrent(claims, { sessions: true })).toBe(false);
  });

  it('without a bus, or while it cannot sync, B falls back to the one-second lifetime', async () => {
    for (const bus of [undefined, silentBus(false)]) {
      const { clock, a, b } = twoInstances(() => bus);
      const claims = await claimsOf(a, 'alice');
      expect(await b.isAccessTokenCurrent(claims, { sessions: true })).toBe(true);
      await a.revokeSession(claims.sid);
      clock.advance(999);
      expect(await b.isAccessTokenCurrent(claims, { sessions: true })).toBe(true);
      clock.advance(1);
      expect(await b.isAccessTokenCurrent(claims, { sessions: true })).toBe(false);
    }
  });

  it('versions have the same one bound: without a bus, a revoke-all on A reaches B after revocationCache.ttl, never later', async () => {
    for (const bus of [undefined, silentBus(false)]) {
      const { clock, a, b } = twoInstances(() => bus);
      const claims = await claimsOf(a, 'alice');
      expect(await b.isAccessTokenCurrent(claims)).toBe(true);
      await a.revokeAllForUser('alice');
      expect(await a.isAccessTokenCurrent(claims)).toBe(false);
      clock.advance(999);
      expect(await b.isAccessTokenCurrent(claims)).toBe(true);
      clock.advance(1);
      expect(await b.isAccessTokenCurrent(claims)).toBe(false);
    }
  });

  it('a resync signal drops everything B cached', async () => {
    const listeners: Array<(signal: RevocationSignal) => void> = [];
    const bus: RevocationBus = {
      publish: async () => undefined,
      subscribe: (listener) => {
        listeners.push(listener);
        return () => undefined;
      },
      sync: async () => true,
    };
    const { a, b } = twoInstances(() => bus);
    const claims = await claimsOf(a, 'alice');
    expect(await b.isAccessTokenCurrent(claims, { sessions: true })).toBe(true);
    await a.revokeSession(claims.sid);
    expect(await b.isAccessTokenCurrent(claims, { sessions: true })).toBe(true);
    for (const listener of listeners) listener({ kind: 'resync' });
    expect(await b.isAccessTokenCurrent(claims, { sessions: true })).toBe(false);
  });
});
