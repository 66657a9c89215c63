import {
  decideGeneration,
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
  const record = { generation: 5, rotatedAt: at(0) };

  it('advances when the presented generation is the current one', () => {
    expect(decideGeneration(5, record, at(60_000), 10_000)).toBe('advance');
  });

  it('answers from grace for the previous generation up to and including the grace period', () => {
    expect(decideGeneration(4, record, at(10_000), 10_000)).toBe('grace');
    expect(decideGeneration(4, record, at(10_001), 10_000)).toBe('reuse');
  });

  it('treats the previous generation as reuse when grace is disabled', () => {
    expect(decideGeneration(4, record, at(0), 0)).toBe('reuse');
  });

  it('treats older and later generations as reuse', () => {
    expect(decideGeneration(3, record, at(1), 10_000)).toBe('reuse');
    expect(decideGeneration(6, record, at(1), 10_000)).toBe('reuse');
  });

  it('has no grace before the first rotation', () => {
    expect(decideGeneration(0, { generation: 1, rotatedAt: null }, at(1), 10_000)).toBe('reuse');
  });
});
