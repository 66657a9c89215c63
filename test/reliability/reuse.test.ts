/**
 * RFC 9700 §4.14.2 (refresh token rotation): a rotated refresh token replayed after the grace
 * window is reuse. The session dies for both holders (the one replaying the old token and the one
 * holding the new one), and the audit hook reports it, in every trial.
 */
import { mongoUri, redisUrl } from '../support/services';
import { logIn, report, scale, signUp } from './support/load';
import { startApp, type TestApp } from '../support/app-harness';
import { HttpClient } from '../support/http-client';

jest.setTimeout(scale(90_000, 600_000));

const GRACE_MS = 10_000;

describe('reuse of a rotated refresh token after the grace window', () => {
  const stacks: TestApp[] = [];

  afterAll(async () => {
    await Promise.all(stacks.map((stack) => stack.close()));
  });

  async function freshStack(): Promise<{ stack: TestApp; wide: HttpClient }> {
    const stack = await startApp({
      mongoUrl: mongoUri(),
      redisUrl: redisUrl(),
      env: { COOKIE_TRANSPORT: 'false', REFRESH_REUSE_GRACE: `${GRACE_MS}ms` },
    });
    stacks.push(stack);
    const wide = new HttpClient(stack.base, 16);
    const close = stack.close;
    stack.close = async (options) => {
      wide.close();
      await close(options);
    };
    return { stack, wide };
  }

  it('revokes the session for both holders and reports token.reuse_detected, in 100 of 100 trials', async () => {
    // Soak: more rounds of 100, each on a fresh database (FerretDB slows down as one collection grows).
    const rounds = scale(1, 5);
    const trials = 100;
    const totals = {
      rounds,
      trials: 0,
      replayRefused: 0,
      holderRefused: 0,
      sessionsRevokedForReuse: 0,
      reuseDetectedEvents: 0,
    };
    for (let round = 0; round < rounds; round += 1) {
      const { stack, wide } = await freshStack();
      const user = await signUp(stack.http);
      const sessions = [user, ...(await inBatches(trials - 1, () => logIn(wide, user.email)))];
      // Each trial: the legitimate client rotates (t0 → t1); a thief holds a copy of t0.
      const rotated = await inBatches(trials, async (i) => {
        const session = sessions[i]!;
        const answer = await wide.refresh(session.refreshToken);
        expect(answer.status).toBe(200);
        return { captured: session.refreshToken, current: String(answer.body?.refresh_token) };
      });

      stack.clock.advance(GRACE_MS + 1_000);
      const auditBefore = stack.audit.length;
      const replays = await inBatches(trials, (i) => wide.refresh(rotated[i]!.captured));
      const holders = await inBatches(trials, (i) => wide.refresh(rotated[i]!.current));
      const detected = stack.audit
        .slice(auditBefore)
        .filter((event) => event.type === 'token.reuse_detected');

      const replayRefused = replays.filter(
        (a) => a.status === 400 && a.body?.error === 'invalid_grant',
      ).length;
      const holderRefused = holders.filter(
        (a) => a.status === 400 && a.body?.error === 'invalid_grant',
      ).length;
      const revoked = (
        await inBatches(trials, (i) =>
          stack.repository.findBySessionId(sessionIdOf(rotated[i]!.current)),
        )
      ).filter((record) => record?.revokedReason === 'reuse_detected').length;
      totals.trials += trials;
      totals.replayRefused += replayRefused;
      totals.holderRefused += holderRefused;
      totals.sessionsRevokedForReuse += revoked;
      totals.reuseDetectedEvents += detected.length;
      expect(replayRefused).toBe(trials);
      expect(holderRefused).toBe(trials);
      expect(revoked).toBe(trials);
      expect(
        new Set(detected.map((event) => event.type === 'token.reuse_detected' && event.sessionId))
          .size,
      ).toBe(trials);
      for (const event of detected) {
        expect(event).toMatchObject({
          userId: user.id,
          presentedGeneration: 0,
          currentGeneration: 1,
        });
      }
      await stack.close();
    }
    report('reuse.after-grace', totals);
  });

  it('inside the grace window the old token is answered with the same new token and nothing is revoked', async () => {
    const { stack } = await freshStack();
    const user = await signUp(stack.http);
    const first = await stack.http.refresh(user.refreshToken);
    const retry = await stack.http.refresh(user.refreshToken);
    expect(first.status).toBe(200);
    expect(retry.status).toBe(200);
    expect(retry.body?.refresh_token).toBe(first.body?.refresh_token);
    expect((await stack.http.refresh(String(first.body?.refresh_token))).status).toBe(200);
  });
});

function sessionIdOf(refreshToken: string): string {
  return Buffer.from(refreshToken.slice(3), 'base64url').subarray(2, 18).toString('hex');
}

async function inBatches<T>(
  count: number,
  task: (index: number) => Promise<T>,
  width = 16,
): Promise<T[]> {
  const results: T[] = [];
  for (let start = 0; start < count; start += width) {
    const slice = Array.from({ length: Math.min(width, count - start) }, (_, k) => task(start + k));
    results.push(...(await Promise.all(slice)));
  }
  return results;
}
