import {
  bindingAfter,
  isThumbprint,
  judgeBinding,
  type SessionBinding,
} from '../../src/domain/session-binding';

const KEY_A = 'A'.repeat(43);
const KEY_B = 'B'.repeat(43);
const boundToA: SessionBinding = { method: 'dpop', jkt: KEY_A };

describe('judgeBinding', () => {
  it('binds an unbound session to the first proven key, and leaves it a bearer session without one', () => {
    expect(judgeBinding(null, { jkt: KEY_A })).toBe('bind');
    expect(judgeBinding(null, undefined)).toBe('bearer');
  });

  it('accepts a bound session only with a proof by its own key', () => {
    expect(judgeBinding(boundToA, { jkt: KEY_A })).toBe('match');
    expect(judgeBinding(boundToA, undefined)).toBe('missing');
    expect(judgeBinding(boundToA, { jkt: KEY_B })).toBe('mismatch');
  });

  it('never lets a DPoP proof stand in for a device-bound (DBSC) key, even with the same thumbprint', () => {
    expect(judgeBinding({ method: 'dbsc', jkt: KEY_A }, { jkt: KEY_A })).toBe('mismatch');
  });
});

describe('bindingAfter', () => {
  it('keeps a binding for good and never replaces it by another key', () => {
    expect(bindingAfter(boundToA, { jkt: KEY_B })).toEqual(boundToA);
    expect(bindingAfter(boundToA, undefined)).toEqual(boundToA);
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
