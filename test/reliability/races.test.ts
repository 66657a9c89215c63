/**
 * Races over HTTP against the running example app (real MongoDB-wire server, BullMQ on real Redis,
 * an in-process worker): one token refreshed 200 times at once, refresh and logout interleaved,
 * refresh racing a password change.
 */
import { createHash } from 'node:crypto';
import { mongoUri, redisUrl } from '../support/services';
import { logIn, report, scale, signUp, tally } from './support/load';
import { PASSWORD, startApp, useApp } from '../support/app-harness';
import { type HttpAnswer, HttpClient } from '../support/http-client';

jest.setTimeout(scale(90_000, 900_000));

const CONCURRENT = 200;
const PASSWORD_2 = 'another horse battery staple';

function sessionIdOf(refreshToken: string): string {
  return Buffer.from(refreshToken.slice(3), 'base64url').subarray(2, 18).toString('hex');
}

function hash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

describe('races against the running app', () => {
  const stack = useApp(() =>
    startApp({ mongoUrl: mongoUri(), redisUrl: redisUrl(), env: { COOKIE_TRANSPORT: 'false' } }),
  );
  let wide: HttpClient;

  beforeAll(() => {
    wide = new HttpClient(stack.base, CONCURRENT);
  });

  afterAll(async () => {
    wide?.close();
  });

  it('200 concurrent refreshes of one token all get the same new token (or invalid_grant), advance one generation, and the session stays usable', async () => {
    const rounds = scale(3, 10);
    const figures = { rounds, requests: 0, ok: 0, invalidGrant: 0, other: 0, distinctNewTokens: 0 };
    for (let round = 0; round < rounds; round += 1) {
      const user = await signUp(stack.http);
      const sessionId = sessionIdOf(user.refreshToken);
      const answers = await Promise.all(
        Array.from({ length: CONCURRENT }, () => wide.refresh(user.refreshToken)),
      );
      const statuses = answers.map((a) => a.status);
      const ok = answers.filter((a) => a.status === 200);
      const refused = answers.filter((a) => a.status === 400 && a.body?.error === 'invalid_grant');
      const newTokens = new Set(ok.map((a) => a.body?.refresh_token));
      figures.requests += answers.length;
      figures.ok += ok.length;
      figures.invalidGrant += refused.length;
      figures.other += answers.length - ok.length - refused.length;
      figures.distinctNewTokens = Math.max(figures.distinctNewTokens, newTokens.size);

      expect({
        round,
        statuses: tally(statuses),
        otherThanOkOrInvalidGrant: CONCURRENT - ok.length - refused.length,
      }).toEqual({
        round,
        statuses: expect.any(Object),
        otherThanOkOrInvalidGrant: 0,
      });
      expect(ok.length).toBeGreaterThan(0);
      expect(newTokens.size).toBe(1);
      const next = String([...newTokens][0]);
      const record = await stack.repository.findBySessionId(sessionId);
      expect(record).toMatchObject({ generation: 1, revokedAt: null, tokenHash: hash(next) });

      const after = await stack.http.refresh(next);
      expect(after.status).toBe(200);
      expect(await stack.repository.findBySessionId(sessionId)).toMatchObject({
        generation: 2,
        revokedAt: null,
      });
    }
    report('races.concurrent-refresh', figures);
  });

  it('refresh and logout of one session interleaved many times always leave the session revoked', async () => {
    const trials = scale(30, 150);
    const user = await signUp(stack.http);
    const figures = {
      trials,
      refreshes: 0,
      refresh200: 0,
      refresh400: 0,
      logouts: 0,
      other: 0,
      survivors: 0,
    };
    for (let trial = 0; trial < trials; trial += 1) {
      const tokens = trial === 0 ? user : await logIn(stack.http, user.email);
      const sessionId = sessionIdOf(tokens.refreshToken);
      const refreshes = 1 + (trial % 4);
      const logoutAt = trial % (refreshes + 1);
      const jobs: Array<Promise<HttpAnswer>> = [];
      for (let i = 0; i <= refreshes; i += 1) {
        const delay = (trial * 7 + i * 3) % 5;
        jobs.push(
          new Promise((resolve) => setTimeout(resolve, delay)).then(() =>
            i === logoutAt
              ? wide.json('POST', '/auth/logout', { refresh_token: tokens.refreshToken })
              : wide.refresh(tokens.refreshToken),
          ),
        );
      }
      const answers = await Promise.all(jobs);
      const issued = answers
        .map((a) => a.body?.refresh_token)
        .filter((t): t is string => typeof t === 'string');
      answers.forEach((answer, i) => {
        if (i === logoutAt) {
          figures.logouts += 1;
          if (answer.status !== 204) figures.other += 1;
          return;
        }
        figures.refreshes += 1;
        if (answer.status === 200) figures.refresh200 += 1;
        else if (answer.status === 400 && answer.body?.error === 'invalid_grant')
          figures.refresh400 += 1;
        else figures.other += 1;
      });

      const record = await stack.repository.findBySessionId(sessionId);
      if (record?.revokedAt === null) figures.survivors += 1;
      expect(record?.revokedAt).toBeInstanceOf(Date);
      for (const token of [tokens.refreshToken, ...issued]) {
        const again = await stack.http.refresh(token);
        expect({ status: again.status, error: again.body?.error }).toEqual({
          status: 400,
          error: 'invalid_grant',
        });
      }
    }
    report('races.refresh-vs-logout', figures);
    expect(figures.other).toBe(0);
    expect(figures.survivors).toBe(0);
  });

  it('refresh racing a password change: no token issued before the change works once the change has answered', async () => {
    const trials = scale(8, 40);
    const user = await signUp(stack.http);
    let password = PASSWORD;
    const figures = {
      trials,
      racingRefreshes: 0,
      racingRefresh200: 0,
      tokensCheckedAfter: 0,
      acceptedAfter: 0,
    };
    for (let trial = 0; trial < trials; trial += 1) {
      const sessions = await Promise.all([1, 2, 3].map(() => login(user.email, password)));
      const nextPassword = password === PASSWORD ? PASSWORD_2 : PASSWORD;
      const refreshes = sessions.flatMap((s) =>
        [0, 1, 2].map((i) =>
          new Promise((resolve) => setTimeout(resolve, i * 4)).then(() =>
            wide.refresh(s.refreshToken),
          ),
        ),
      );
      // The change starts 0–6 ms after the first refreshes, so both orders occur.
      const change = new Promise((resolve) => setTimeout(resolve, (trial % 3) * 3)).then(() =>
        wide.json(
          'POST',
          '/auth/password',
          { currentPassword: password, newPassword: nextPassword },
          { authorization: `Bearer ${sessions[0]!.accessToken}` },
        ),
      );
      const changed = await change;
      expect(changed.status).toBe(204);
      password = nextPassword;
      const answers = await Promise.all(refreshes);
      figures.racingRefreshes += answers.length;
      figures.racingRefresh200 += answers.filter((a) => a.status === 200).length;

      const refreshTokens = [
        ...sessions.map((s) => s.refreshToken),
        ...answers
          .map((a) => a.body?.refresh_token)
          .filter((t): t is string => typeof t === 'string'),
      ];
      const accessTokens = [
        ...sessions.map((s) => s.accessToken),
        ...answers
          .map((a) => a.body?.access_token)
          .filter((t): t is string => typeof t === 'string'),
      ];
      for (const token of new Set(refreshTokens)) {
        figures.tokensCheckedAfter += 1;
        const again = await stack.http.refresh(token);
        if (again.status === 200) figures.acceptedAfter += 1;
        expect({ status: again.status, error: again.body?.error }).toEqual({
          status: 400,
          error: 'invalid_grant',
        });
      }
      for (const token of new Set(accessTokens)) {
        figures.tokensCheckedAfter += 1;
        const sessionsPage = await stack.http.bearer('GET', '/auth/sessions', token);
        if (sessionsPage.status === 200) figures.acceptedAfter += 1;
        expect(sessionsPage.status).toBe(401);
      }
      const fresh = await login(user.email, password);
      expect((await stack.http.refresh(fresh.refreshToken)).status).toBe(200);
    }
    report('races.refresh-vs-password-change', figures);
  });

  async function login(email: string, password: string) {
    const answer = await stack.http.json('POST', '/auth/login', { email, password });
    if (answer.status !== 200) throw new Error(`login answered ${answer.status}: ${answer.text}`);
    return {
      accessToken: String(answer.body?.access_token),
      refreshToken: String(answer.body?.refresh_token),
    };
  }
});
