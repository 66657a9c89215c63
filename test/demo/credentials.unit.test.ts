/**
 * The example app's credential routes under attack (issue 14, items 2, 4 and 5): rate limits per
 * client IP and per account on register, login and password change, and per client IP on the
 * token routes; registration that answers the same whether or not the email has an account;
 * passwords over bcrypt's 72 bytes refused the same way everywhere. In-memory adapters: these are the app's rules, not the stores'.
 */
import bcrypt from 'bcrypt';
import request from 'supertest';
import { PASSWORD, refreshJson, signUp, withApp, type TestApp } from '../support/app-harness';

/** The app with `env`, behind one proxy hop (the client IP is the last X-Forwarded-For entry). */
function withBackend(env: Record<string, string>, run: (backend: TestApp) => Promise<void>) {
  return withApp({ env }, async (backend) => {
    backend.app.set('trust proxy', 1);
    await run(backend);
  });
}

describe('rate limits on the routes that check a password', () => {
  it('login: failures are limited per account across client IPs; successes do not count', async () => {
    await withBackend({ RATE_LIMIT_ACCOUNT_PER_HOUR: '3' }, async ({ app }) => {
      const { email } = await signUp(app);
      for (let i = 0; i < 5; i += 1) {
        const ok = await request(app)
          .post('/auth/login')
          .set('X-Forwarded-For', `203.0.113.${i}`)
          .send({ email, password: PASSWORD });
        expect(ok.status).toBe(200);
      }
      const guesses = [];
      for (let i = 0; i < 4; i += 1) {
        guesses.push(
          await request(app)
            .post('/auth/login')
            .set('X-Forwarded-For', `198.51.100.${i}`)
            .send({ email: i % 2 ? email.toUpperCase() : email, password: `guess ${i} xxxx` }),
        );
      }
      expect(guesses.map((g) => g.status)).toEqual([401, 401, 401, 429]);
      expect(guesses[3]!.body).toEqual({
        error: 'rate_limited',
        error_description: 'Too many requests; retry later.',
      });
      // The account is locked for this window, even for the right password (the trade-off in
      // docs/security.md); another account from the same IPs is not.
      const right = await request(app)
        .post('/auth/login')
        .set('X-Forwarded-For', '192.0.2.1')
        .send({ email, password: PASSWORD });
      expect(right.status).toBe(429);
      const other = await signUp(app);
      const otherGuess = await request(app)
        .post('/auth/login')
        .set('X-Forwarded-For', '198.51.100.0')
        .send({ email: other.email, password: 'guess for another' });
      expect(otherGuess.status).toBe(401);
    });
  });

  it('login: an unknown email is limited exactly like a known one (the limit reveals nothing)', async () => {
    await withBackend({ RATE_LIMIT_ACCOUNT_PER_HOUR: '2' }, async ({ app }) => {
      const statuses = [];
      for (let i = 0; i < 3; i += 1) {
        const answer = await request(app)
          .post('/auth/login')
          .set('X-Forwarded-For', `198.51.100.${i}`)
          .send({ email: 'nobody@example.com', password: 'whatever password' });
        statuses.push(answer.status);
      }
      expect(statuses).toEqual([401, 401, 429]);
    });
  });

  it('password change: wrong current passwords are limited per user id, whatever the IP', async () => {
    await withBackend({ RATE_LIMIT_ACCOUNT_PER_HOUR: '3' }, async ({ app }) => {
      const victim = await signUp(app);
      const other = await signUp(app);
      const change = (token: string, ip: string, currentPassword: string) =>
        request(app)
          .post('/auth/password')
          .set('Authorization', `Bearer ${token}`)
          .set('X-Forwarded-For', ip)
          .send({ currentPassword, newPassword: 'a brand new password' });
      const statuses = [];
      for (let i = 0; i < 4; i += 1) {
        statuses.push(
          (await change(victim.tokens.access_token, `198.51.100.${i}`, `guess ${i}xxxx`)).status,
        );
      }
      expect(statuses).toEqual([403, 403, 403, 429]);
      // The right guess is refused too: no takeover at bcrypt speed.
      expect((await change(victim.tokens.access_token, '192.0.2.9', PASSWORD)).status).toBe(429);
      expect(
        (await change(other.tokens.access_token, '198.51.100.0', 'a wrong guess')).status,
      ).toBe(403);
    });
  });

  it('register, login and password change share one per-IP budget; another IP has its own', async () => {
    await withBackend({ RATE_LIMIT_LOGIN_PER_MINUTE: '3' }, async ({ app }) => {
      const ip = '198.51.100.7';
      const first = await request(app)
        .post('/auth/register')
        .set('X-Forwarded-For', ip)
        .send({ email: 'ip@example.com', password: PASSWORD });
      const login = await request(app)
        .post('/auth/login')
        .set('X-Forwarded-For', ip)
        .send({ email: 'ip@example.com', password: PASSWORD });
      const change = await request(app)
        .post('/auth/password')
        .set('X-Forwarded-For', ip)
        .set('Authorization', `Bearer ${login.body.access_token}`)
        .send({ currentPassword: 'wrong password', newPassword: 'a brand new password' });
      const fourth = await request(app)
        .post('/auth/register')
        .set('X-Forwarded-For', ip)
        .send({ email: 'ip2@example.com', password: PASSWORD });
      expect([first.status, login.status, change.status, fourth.status]).toEqual([
        202, 200, 403, 429,
      ]);
      const elsewhere = await request(app)
        .post('/auth/password')
        .set('X-Forwarded-For', '198.51.100.8')
        .set('Authorization', `Bearer ${login.body.access_token}`)
        .send({ currentPassword: 'wrong password', newPassword: 'a brand new password' });
      expect(elsewhere.status).toBe(403);
    });
  });
});

describe('the rate limit on the token routes', () => {
  it('applies the token rate limit per client (429 once RATE_LIMIT_TOKEN_PER_MINUTE is used up)', async () => {
    await withApp(
      { env: { RATE_LIMIT_TOKEN_PER_MINUTE: '3', RATE_LIMIT_LOGIN_PER_MINUTE: '2' } },
      async (limited) => {
        const statuses: number[] = [];
        for (let i = 0; i < 5; i += 1)
          statuses.push((await refreshJson(limited.app, 'rt_x')).status);
        expect(statuses).toEqual([400, 400, 400, 429, 429]);
        const logins: number[] = [];
        for (let i = 0; i < 3; i += 1) {
          logins.push(
            (
              await request(limited.app)
                .post('/auth/login')
                .send({ email: 'a@b.co', password: 'whatever1' })
            ).status,
          );
        }
        expect(logins).toEqual([401, 401, 429]);
      },
    );
  });
});

describe('registration', () => {
  it('answers a taken email (any letter case) exactly like a new one, with the same bcrypt work, and leaves the account alone', async () => {
    await withBackend({}, async ({ app }) => {
      const hash = jest.spyOn(bcrypt, 'hash');
      try {
        const fresh = await request(app)
          .post('/auth/register')
          .send({ email: 'owner@example.com', password: PASSWORD });
        const hashesForNew = hash.mock.calls.length;
        const taken = await request(app)
          .post('/auth/register')
          .send({ email: 'OWNER@example.com ', password: 'attacker password' });
        const hashesForTaken = hash.mock.calls.length - hashesForNew;

        expect(fresh.status).toBe(202);
        expect(taken.status).toBe(fresh.status);
        expect(taken.body).toEqual(fresh.body);
        expect(taken.headers['content-type']).toBe(fresh.headers['content-type']);
        expect(taken.headers['cache-control']).toBe(fresh.headers['cache-control']);
        expect(hashesForNew).toBe(1);
        expect(hashesForTaken).toBe(1);
      } finally {
        hash.mockRestore();
      }
      const owner = await request(app)
        .post('/auth/login')
        .send({ email: 'owner@example.com', password: PASSWORD });
      expect(owner.status).toBe(200);
      const attacker = await request(app)
        .post('/auth/login')
        .send({ email: 'owner@example.com', password: 'attacker password' });
      expect(attacker.status).toBe(401);
    });
  });
});

describe('passwords longer than bcrypt’s 72 bytes', () => {
  const exactly72 = 'p'.repeat(70) + 'é'; // 70 + 2 bytes

  it('a 72-byte password works; with any suffix it is refused at login, register and password change alike', async () => {
    await withBackend({}, async ({ app }) => {
      expect(Buffer.byteLength(exactly72)).toBe(72);
      const email = 'long@example.com';
      expect(
        (await request(app).post('/auth/register').send({ email, password: exactly72 })).status,
      ).toBe(202);
      const login = await request(app).post('/auth/login').send({ email, password: exactly72 });
      expect(login.status).toBe(200);

      for (const suffix of ['x', 'anything at all', 'é', '\u0000']) {
        const longer = exactly72 + suffix;
        const atLogin = await request(app).post('/auth/login').send({ email, password: longer });
        expect(atLogin.status).toBe(400);
        expect(atLogin.body).toEqual({
          error: 'invalid_request',
          error_description: 'password must be at most 72 bytes.',
        });
        const atRegister = await request(app)
          .post('/auth/register')
          .send({ email: 'other-long@example.com', password: longer });
        expect(atRegister.status).toBe(400);
        const asCurrent = await request(app)
          .post('/auth/password')
          .set('Authorization', `Bearer ${login.body.access_token}`)
          .send({ currentPassword: longer, newPassword: 'a brand new password' });
        expect(asCurrent.status).toBe(400);
        expect(asCurrent.body.error_description).toBe('currentPassword must be at most 72 bytes.');
        const asNew = await request(app)
          .post('/auth/password')
          .set('Authorization', `Bearer ${login.body.access_token}`)
          .send({ currentPassword: exactly72, newPassword: longer });
        expect(asNew.status).toBe(400);
        expect(asNew.body.error_description).toBe('newPassword must be at most 72 bytes.');
      }
      // Nothing above changed the password.
      expect(
        (await request(app).post('/auth/login').send({ email, password: exactly72 })).status,
      ).toBe(200);
    });
  });

  it('every answer of register, login and password change, success or refusal, is no-store', async () => {
    await withBackend({}, async ({ app }) => {
      const email = 'cache@example.com';
      const answers = [
        await request(app).post('/auth/register').send({ email, password: PASSWORD }),
        await request(app).post('/auth/register').send({ email, password: '' }),
        await request(app).post('/auth/login').send({ email, password: 'wrong password' }),
      ];
      const login = await request(app).post('/auth/login').send({ email, password: PASSWORD });
      const bearer = `Bearer ${login.body.access_token}`;
      answers.push(
        login,
        await request(app)
          .post('/auth/password')
          .set('Authorization', bearer)
          .send({ currentPassword: 'wrong password', newPassword: 'a brand new password' }),
        await request(app)
          .post('/auth/password')
          .set('Authorization', bearer)
          .send({ currentPassword: PASSWORD, newPassword: 'a brand new password' }),
      );
      expect(answers.map((answer) => [answer.status, answer.headers['cache-control']])).toEqual([
        [202, 'no-store'],
        [400, 'no-store'],
        [401, 'no-store'],
        [200, 'no-store'],
        [403, 'no-store'],
        [204, 'no-store'],
      ]);
    });
  });
});
