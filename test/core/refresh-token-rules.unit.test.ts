import {
  decideGeneration,
  provenanceOf,
  supersededSlot,
  supersededWindow,
  SUPERSEDED_KEPT,
  isExpired,
  judgeVersions,
  slideExpiry,
  type GlobalVersion,
} from '../../src/domain/refresh-token';
import { EPOCH } from '../support/fake-clock';

const at = (ms: number) => new Date(EPOCH.getTime() + ms);
const never: GlobalVersion = { minVersion: 0, rotatedAt: null, reason: null, gracePeriodMs: 0 };

describe('isExpired', () => {
  const record = { expiresAt: at(1_000), absoluteExpiresAt: at(5_000) };

  it('is false before the idle expiry and true from it on', () => {
    expect(isExpired(record, at(999))).toBe(false);
    expect(isExpired(record, at(1_000))).toBe(true);
  });

  it('is true from the absolute expiry on, whatever the idle expiry says', () => {
    expect(isExpired({ expiresAt: at(9_000), absoluteExpiresAt: at(5_000) }, at(5_000))).toBe(true);
  });
});

describe('slideExpiry', () => {
  it('moves the idle expiry to now + idle lifetime', () => {
    expect(slideExpiry(at(0), 1_000, at(10_000))).toEqual(at(1_000));
  });

  it('never slides past the absolute expiry', () => {
    expect(slideExpiry(at(9_500), 1_000, at(10_000))).toEqual(at(10_000));
  });
});

describe('judgeVersions', () => {
  const session = { tokenVersion: 2, globalVersionAtIssuance: 3 };

  it('accepts a session at or above both minimums', () => {
    expect(judgeVersions(session, 2, { ...never, minVersion: 3 }, at(0))).toBe('current');
  });

  it("rejects a session below the user's minimum", () => {
    expect(judgeVersions(session, 3, never, at(0))).toBe('outdated');
  });

  it('lets a session exactly one global version behind through inside the grace window only', () => {
    const global: GlobalVersion = {
      minVersion: 4,
      rotatedAt: at(0),
      reason: 'breach',
      gracePeriodMs: 1_000,
    };
    expect(judgeVersions(session, 0, global, at(999))).toBe('global_grace');
    expect(judgeVersions(session, 0, global, at(1_000))).toBe('outdated');
  });

  it('rejects a session two global versions behind even inside the grace window', () => {
    const global: GlobalVersion = {
      minVersion: 5,
      rotatedAt: at(0),
      reason: 'breach',
      gracePeriodMs: 60_000,
    };
    expect(judgeVersions(session, 0, global, at(1))).toBe('outdated');
  });

  it('has no grace window when the grace period is 0', () => {
    const global: GlobalVersion = {
      minVersion: 4,
      rotatedAt: at(0),
      reason: 'breach',
      gracePeriodMs: 0,
    };
    expect(judgeVersions(session, 0, global, at(0))).toBe('outdated');
  });

  it('the user minimum wins over the global grace', () => {
    const global: GlobalVersion = {
      minVersion: 4,
      rotatedAt: at(0),
      reason: 'breach',
      gracePeriodMs: 1_000,
    };
    expect(judgeVersions(session, 3, global, at(1))).toBe('outdated');
  });
});

describe('decideGeneration', () => {
  const hashOf = (generation: number) => `hash-of-${generation}`;
  /** A record at generation 5 whose generations 0..4 were superseded at 1 s, 2 s, ... 5 s. */
  const superseded = [0, 1, 2, 3, 4].map((generation) => ({
    generation,
    at: at((generation + 1) * 1_000),
    tokenHash: hashOf(generation),
  }));
  const record = { generation: 5, tokenHash: hashOf(5), superseded };
  const token = (generation: number, tokenHash = hashOf(generation)) => ({ generation, tokenHash });

  it('advances when the presented token is the current one', () => {
    expect(decideGeneration(token(5), record, at(60_000), 10_000)).toBe('advance');
  });

  it('answers from grace for the previous generation up to and including the grace period', () => {
    expect(decideGeneration(token(4), record, at(15_000), 10_000)).toBe('grace');
    expect(decideGeneration(token(4), record, at(15_001), 10_000)).toBe('reuse');
  });

  it('answers from grace for any generation superseded inside the window, however far behind', () => {
    expect(decideGeneration(token(2), record, at(13_000), 10_000)).toBe('grace');
    expect(decideGeneration(token(0), record, at(11_000), 10_000)).toBe('grace');
  });

  it('treats an older generation superseded before the window as reuse, even when newer ones are inside it', () => {
    expect(decideGeneration(token(2), record, at(13_001), 10_000)).toBe('reuse');
    expect(decideGeneration(token(4), record, at(13_001), 10_000)).toBe('grace');
  });

  it('treats a generation older than the supersede list as reuse, even inside the window', () => {
    const trimmed = { ...record, superseded: superseded.slice(2) };
    expect(decideGeneration(token(1), trimmed, at(2_000), 10_000)).toBe('reuse');
    expect(decideGeneration(token(2), trimmed, at(2_000), 10_000)).toBe('grace');
  });

  it('treats any older generation as reuse when grace is disabled', () => {
    expect(decideGeneration(token(4), record, at(5_000), 0)).toBe('reuse');
  });

  it('has no grace before the first rotation', () => {
    const fresh = { generation: 1, tokenHash: hashOf(1), superseded: [] };
    expect(decideGeneration(token(0), fresh, at(1), 10_000)).toBe('reuse');
  });

  it('uses the earliest time when a list records one generation twice with the same hash', () => {
    const twice = {
      generation: 1,
      tokenHash: hashOf(1),
      superseded: [
        { generation: 0, at: at(0), tokenHash: hashOf(0) },
        { generation: 0, at: at(3_000), tokenHash: hashOf(0) },
      ],
    };
    expect(decideGeneration(token(0), twice, at(10_001), 10_000)).toBe('reuse');
  });

  describe('a token the session never had (its tag verified, so it was made with our secret)', () => {
    it('is never_issued for the current generation with another hash', () => {
      expect(decideGeneration(token(5, 'other'), record, at(5_001), 10_000)).toBe('never_issued');
    });

    it('is never_issued for a listed generation with another hash, inside the window or not, grace on or off', () => {
      for (const now of [at(5_001), at(60_000)]) {
        for (const grace of [0, 10_000]) {
          expect(decideGeneration(token(4, 'other'), record, now, grace)).toBe('never_issued');
          expect(decideGeneration(token(0, 'other'), record, now, grace)).toBe('never_issued');
        }
      }
    });

    it('is never_issued for a generation above the current one, whatever its hash', () => {
      expect(decideGeneration(token(6), record, at(5_001), 10_000)).toBe('never_issued');
      expect(decideGeneration(token(6, hashOf(5)), record, at(5_001), 10_000)).toBe('never_issued');
    });

    it('is reuse for a generation older than the list: its hash is no longer known', () => {
      const trimmed = { ...record, superseded: superseded.slice(2) };
      expect(decideGeneration(token(1, 'other'), trimmed, at(2_000), 10_000)).toBe('reuse');
    });
  });
});

describe('provenanceOf', () => {
  const record = {
    generation: 2,
    tokenHash: 'h2',
    superseded: [
      { generation: 0, at: at(1), tokenHash: 'h0' },
      { generation: 1, at: at(2), tokenHash: 'h1' },
    ],
  };

  it('tells the current token, a superseded one with its time, and tokens never issued apart', () => {
    expect(provenanceOf(record, { generation: 2, tokenHash: 'h2' })).toEqual({ kind: 'current' });
    expect(provenanceOf(record, { generation: 1, tokenHash: 'h1' })).toEqual({
      kind: 'superseded',
      at: at(2),
    });
    expect(provenanceOf(record, { generation: 1, tokenHash: 'h2' })).toEqual({
      kind: 'never_issued',
    });
    expect(provenanceOf(record, { generation: 2, tokenHash: 'h1' })).toEqual({
      kind: 'never_issued',
    });
  });
});

describe('the supersede ring', () => {
  it('written one slot per rotation, it reads back as the newest SUPERSEDED_KEPT generations, oldest first', () => {
    const ring: ({ generation: number; at: Date; tokenHash: string } | null)[] = [];
    for (let generation = 0; generation < SUPERSEDED_KEPT + 5; generation += 1) {
      ring[supersededSlot(generation)] = {
        generation,
        at: at(generation + 1),
        tokenHash: `h${generation}`,
      };
    }
    const list = supersededWindow(SUPERSEDED_KEPT + 5, ring);
    expect(list).toHaveLength(SUPERSEDED_KEPT);
    expect(list[0]).toEqual({ generation: 5, at: at(6), tokenHash: 'h5' });
    expect(list.at(-1)).toEqual({
      generation: SUPERSEDED_KEPT + 4,
      at: at(SUPERSEDED_KEPT + 5),
      tokenHash: `h${SUPERSEDED_KEPT + 4}`,
    });
  });

  it('drops empty slots and entries outside the window before the current generation', () => {
    const list = supersededWindow(20, [
      null,
      { generation: 2, at: at(1), tokenHash: 'h2' },
      { generation: 19, at: at(3), tokenHash: 'h19' },
      { generation: 20, at: at(4), tokenHash: 'h20' },
      { generation: 4, at: at(2), tokenHash: 'h4' },
    ]);
    expect(list).toEqual([
      { generation: 4, at: at(2), tokenHash: 'h4' },
      { generation: 19, at: at(3), tokenHash: 'h19' },
    ]);
  });
});
