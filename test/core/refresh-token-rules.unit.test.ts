import {
  decideGeneration,
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
  /** A record at generation 5 whose generations 0..4 were superseded at 1 s, 2 s, ... 5 s. */
  const superseded = [0, 1, 2, 3, 4].map((generation) => ({
    generation,
    at: at((generation + 1) * 1_000),
  }));
  const record = { generation: 5, rotatedAt: at(5_000), superseded };

  it('advances when the presented generation is the current one', () => {
    expect(decideGeneration(5, record, at(60_000), 10_000)).toBe('advance');
  });

  it('answers from grace for the previous generation up to and including the grace period', () => {
    expect(decideGeneration(4, record, at(15_000), 10_000)).toBe('grace');
    expect(decideGeneration(4, record, at(15_001), 10_000)).toBe('reuse');
  });

  it('answers from grace for any generation superseded inside the window, however far behind', () => {
    expect(decideGeneration(2, record, at(13_000), 10_000)).toBe('grace');
    expect(decideGeneration(0, record, at(11_000), 10_000)).toBe('grace');
  });

  it('treats an older generation superseded before the window as reuse, even when newer ones are inside it', () => {
    expect(decideGeneration(2, record, at(13_001), 10_000)).toBe('reuse');
    expect(decideGeneration(4, record, at(13_001), 10_000)).toBe('grace');
  });

  it('treats a generation older than the supersede list as reuse, even inside the window', () => {
    const trimmed = { ...record, superseded: superseded.slice(2) };
    expect(decideGeneration(1, trimmed, at(2_000), 10_000)).toBe('reuse');
    expect(decideGeneration(2, trimmed, at(2_000), 10_000)).toBe('grace');
  });

  it('treats any older generation as reuse when grace is disabled', () => {
    expect(decideGeneration(4, record, at(5_000), 0)).toBe('reuse');
  });

  it('treats later generations as reuse', () => {
    expect(decideGeneration(6, record, at(5_001), 10_000)).toBe('reuse');
  });

  it('has no grace before the first rotation', () => {
    expect(
      decideGeneration(0, { generation: 1, rotatedAt: null, superseded: [] }, at(1), 10_000),
    ).toBe('reuse');
  });

  it('falls back to rotatedAt for the previous generation of a record written before the list', () => {
    const legacy = { generation: 5, rotatedAt: at(0), superseded: [] };
    expect(decideGeneration(4, legacy, at(10_000), 10_000)).toBe('grace');
    expect(decideGeneration(3, legacy, at(1), 10_000)).toBe('reuse');
  });

  it('uses the earliest time when racing winners recorded a generation twice', () => {
    const twice = {
      generation: 1,
      rotatedAt: at(3_000),
      superseded: [
        { generation: 0, at: at(0) },
        { generation: 0, at: at(3_000) },
      ],
    };
    expect(decideGeneration(0, twice, at(10_001), 10_000)).toBe('reuse');
  });
});

describe('the supersede ring', () => {
  it('written one slot per rotation, it reads back as the newest SUPERSEDED_KEPT generations, oldest first', () => {
    const ring: ({ generation: number; at: Date } | null)[] = [];
    for (let generation = 0; generation < SUPERSEDED_KEPT + 5; generation += 1) {
      ring[supersededSlot(generation)] = { generation, at: at(generation + 1) };
    }
    const list = supersededWindow(SUPERSEDED_KEPT + 5, ring);
    expect(list).toHaveLength(SUPERSEDED_KEPT);
    expect(list[0]).toEqual({ generation: 5, at: at(6) });
    expect(list.at(-1)).toEqual({ generation: SUPERSEDED_KEPT + 4, at: at(SUPERSEDED_KEPT + 5) });
  });

  it('drops empty slots and entries outside the window before the current generation', () => {
    const list = supersededWindow(20, [
      null,
      { generation: 2, at: at(1) },
      { generation: 19, at: at(3) },
      { generation: 20, at: at(4) },
      { generation: 4, at: at(2) },
    ]);
    expect(list).toEqual([
      { generation: 4, at: at(2) },
      { generation: 19, at: at(3) },
    ]);
  });
});
