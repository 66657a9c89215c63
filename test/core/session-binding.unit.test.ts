import {
  bindingAfter,
  BOUND_LEEWAY_MS,
  credentialExpiry,
  isThumbprint,
  judgeBinding,
  type SessionBinding,
} from '../../src/domain/session-binding';

const KEY_A = 'A'.repeat(43);
const KEY_B = 'B'.repeat(43);
const boundToA: SessionBinding = { method: 'dpop', jkt: KEY_A };
const NOW = new Date('2026-01-01T00:00:00Z');
const deviceBoundToA: SessionBinding = {
  method: 'dbsc',
  jkt: KEY_A,
  jwk: { kty: 'EC', crv: 'P-256', x: 'x', y: 'y' },
  boundUntil: new Date(NOW.getTime() + 60_000),
};

describe('judgeBinding', () => {
  it('binds an unbound session to the first proven key, and leaves it a bearer session without one', () => {
    expect(judgeBinding(null, { jkt: KEY_A }, NOW)).toBe('bind');
    expect(judgeBinding(null, undefined, NOW)).toBe('bearer');
  });

  it('accepts a bound session only with a proof by its own key', () => {
    expect(judgeBinding(boundToA, { jkt: KEY_A }, NOW)).toBe('match');
    expect(judgeBinding(boundToA, undefined, NOW)).toBe('missing');
    expect(judgeBinding(boundToA, { jkt: KEY_B }, NOW)).toBe('mismatch');
  });

  it('never lets a DPoP proof stand in for a device-bound (DBSC) key, even with the same thumbprint', () => {
    expect(judgeBinding(deviceBoundToA, { jkt: KEY_A }, NOW)).toBe('mismatch');
  });

  it('lets a device-bound (DBSC) session refresh without a proof only inside its bound lifetime', () => {
    expect(judgeBinding(deviceBoundToA, undefined, NOW)).toBe('match');
    expect(judgeBinding(deviceBoundToA, undefined, new Date(NOW.getTime() + 60_000))).toBe(
      'lapsed',
    );
    expect(judgeBinding(deviceBoundToA, undefined, new Date(NOW.getTime() + 59_999))).toBe('match');
  });
});

describe('credentialExpiry', () => {
  it('is the idle expiry, or the bound lifetime less the leeway of a device-bound session when that comes first', () => {
    const idle = new Date(NOW.getTime() + 3_600_000);
    expect(credentialExpiry(idle, null)).toEqual(idle);
    expect(credentialExpiry(idle, boundToA)).toEqual(idle);
    expect(credentialExpiry(idle, deviceBoundToA)).toEqual(
      new Date(deviceBoundToA.boundUntil.getTime() - BOUND_LEEWAY_MS),
    );
    const soon = new Date(NOW.getTime() + 1000);
    expect(credentialExpiry(soon, deviceBoundToA)).toEqual(soon);
  });
});

describe('bindingAfter', () => {
  it('keeps a binding for good and never replaces it by another key', () => {
    expect(bindingAfter(boundToA, { jkt: KEY_B })).toEqual(boundToA);
    expect(bindingAfter(boundToA, undefined)).toEqual(boundToA);
    expect(bindingAfter(deviceBoundToA, { jkt: KEY_B })).toEqual(deviceBoundToA);
  });

  it('binds an unbound session to the proven key, and leaves it unbound without one', () => {
    expect(bindingAfter(null, { jkt: KEY_B })).toEqual({ method: 'dpop', jkt: KEY_B });
    expect(bindingAfter(null, undefined)).toBeNull();
  });
});

describe('isThumbprint', () => {
  it('takes 43 base64url characters (a SHA-256 JWK thumbprint) and nothing else', () => {
    expect(isThumbprint(KEY_A)).toBe(true);
    expect(isThumbprint('A'.repeat(42))).toBe(false);
    expect(isThumbprint(`${'A'.repeat(42)}=`)).toBe(false);
    expect(isThumbprint(`${'A'.repeat(42)}+`)).toBe(false);
    expect(isThumbprint(43)).toBe(false);
  });
});
