import { waitFor } from '../support/wait-for';

describe('waitFor, the tests’ one poller', () => {
  it('returns the first ready value', async () => {
    let calls = 0;
    const value = await waitFor(async () => (++calls >= 3 ? { calls } : undefined), {
      what: 'the third call',
      intervalMs: 1,
    });
    expect(value).toEqual({ calls: 3 });
  });

  it('with `until`, returns the first accepted value, even a falsy one', async () => {
    let left = 3;
    expect(
      await waitFor(() => --left, { what: 'zero left', until: (n) => n === 0, intervalMs: 1 }),
    ).toBe(0);
  });

  it('fails loudly on timeout, naming what it waited for and the last value observed', async () => {
    await expect(
      waitFor(() => ({ revoked: 1, expected: 2 }), {
        what: 'both sessions revoked',
        until: (seen) => seen.revoked === seen.expected,
        timeoutMs: 30,
        intervalMs: 5,
      }),
    ).rejects.toThrow(
      'timed out after 30 ms waiting for both sessions revoked; last observed: {"revoked":1,"expected":2}',
    );
  });

  it('rejects at once when the probe throws', async () => {
    let calls = 0;
    await expect(
      waitFor(
        () => {
          calls += 1;
          throw new Error('probe broke');
        },
        { what: 'never', timeoutMs: 1_000 },
      ),
    ).rejects.toThrow('probe broke');
    expect(calls).toBe(1);
  });
});
