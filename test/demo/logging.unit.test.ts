/**
 * The example app's logs (pino-http request lines, router error lines) never carry a token, a
 * cookie, a password or a secret, on success or on failure.
 */
import request from 'supertest';
import { ACCESS_SECRET, PASSWORD, REFRESH_SECRET, withApp } from '../support/app-harness';

describe('the example app’s logs', () => {
  it('record requests without tokens, cookies, passwords or secrets', async () => {
    await withApp({ logLevel: 'trace' }, async ({ runtime, logs: { lines } }) => {
      const { app } = runtime;
      const email = 'logging@example.com';
      await request(app).post('/auth/register').send({ email, password: PASSWORD }).expect(202);
      const body = await request(app)
        .post('/auth/login')
        .send({ email, password: PASSWORD })
        .expect(200);
      const browser = await request(app)
        .post('/auth/login')
        .set('X-Token-Transport', 'cookie')
        .send({ email, password: PASSWORD })
        .expect(200);
      const cookie = (browser.headers['set-cookie'] as unknown as string[])[0]!.split(';')[0]!;
      const rotated = await request(app)
        .post('/auth/token')
        .type('form')
        .send({ grant_type: 'refresh_token', refresh_token: body.body.refresh_token })
        .expect(200);
      await request(app)
        .post('/auth/token')
        .set('Cookie', cookie)
        .set('X-Refresh-CSRF', '1')
        .expect(200);
      await request(app).post('/auth/token').send({ refresh_token: 'rt_forged' }).expect(400);
      await request(app)
        .get('/me')
        .set('Authorization', `Bearer ${rotated.body.access_token}`)
        .expect(200);
      await request(app).get('/me').set('Authorization', 'Bearer not.a.token').expect(401);
      await request(app)
        .post('/auth/login')
        .send({ email, password: 'wrong password!' })
        .expect(401);

      const text = lines.join('');
      expect(lines.length).toBeGreaterThanOrEqual(9);
      for (const secret of [
        body.body.refresh_token,
        body.body.access_token,
        rotated.body.refresh_token,
        rotated.body.access_token,
        browser.body.access_token,
        cookie.split('=')[1],
        'rt_forged',
        'not.a.token',
        PASSWORD,
        'wrong password!',
        ACCESS_SECRET,
        REFRESH_SECRET,
      ]) {
        expect(text).not.toContain(secret);
      }
      expect(text).not.toMatch(/authorization|set-cookie|"cookie"/i);
      expect(text).toContain('"url":"/auth/token"');
    });
  });

  it('redact token-looking query parameters from request lines, whatever their case or encoding', async () => {
    await withApp({ logLevel: 'trace' }, async ({ runtime, logs: { lines } }) => {
      const { app } = runtime;
      const email = 'query@example.com';
      await request(app).post('/auth/register').send({ email, password: PASSWORD }).expect(202);
      const tokens = (
        await request(app).post('/auth/login').send({ email, password: PASSWORD }).expect(200)
      ).body;
      const refresh = encodeURIComponent(tokens.refresh_token);
      const access = encodeURIComponent(tokens.access_token);
      // A client that wrongly puts tokens in the URL is refused, and the tokens stay out of the log.
      const urls = [
        `/auth/token?refresh_token=${refresh}`,
        `/auth/token?grant_type=refresh_token&REFRESH_TOKEN=${refresh}&keep=me`,
        `/auth/token?refresh%5Ftoken=${refresh}`,
        `/me?access_token=${access}`,
        `/me?Token=${access}&a=1`,
        `/me?token[]=${access}`,
        `/me?state=${refresh}`,
        `/me?id_token=${access}`,
      ];
      for (const url of urls) {
        const answer = url.startsWith('/me') ? request(app).get(url) : request(app).post(url);
        expect((await answer).status).toBeGreaterThanOrEqual(400);
      }
      const text = lines.join('');
      expect(text).not.toContain(tokens.refresh_token);
      expect(text).not.toContain(refresh);
      expect(text).not.toContain(tokens.access_token);
      expect(text).not.toContain(tokens.access_token.split('.')[1]);
      expect(text).toContain('"url":"/auth/token?refresh_token=[REDACTED]"');
      expect(text).toContain(
        '"url":"/auth/token?grant_type=refresh_token&REFRESH_TOKEN=[REDACTED]&keep=me"',
      );
      expect(text).toContain('"url":"/me?Token=[REDACTED]&a=1"');
    });
  });

  it('log an unexpected failure with its details while the client gets a generic body', async () => {
    await withApp({ logLevel: 'trace' }, async ({ runtime, logs: { lines } }) => {
      // A bug inside the service (not a store outage) is what reaches the 500 branch.
      jest
        .spyOn(runtime.service, 'refresh')
        .mockRejectedValue(new RangeError('internal invariant broken'));
      const response = await request(runtime.app)
        .post('/auth/token')
        .send({ refresh_token: 'rt_abc' });
      expect(response.status).toBe(500);
      expect(response.text).not.toContain('invariant');
      const text = lines.join('');
      expect(text).toContain('internal invariant broken');
      expect(text).not.toContain('rt_abc');
    });
  });
});
