/**
 * The refresh-cookie transport: attributes, per-request opt-in (one deployment serves body and
 * cookie clients), the CSRF header and origin checks, clearing with the same attributes.
 */
import express from 'express';
import request from 'supertest';
import { createRefreshRouter } from '../../src/adapters/express';
import { MemoryRefreshTokenRepository, MemoryVersionStore } from '../../src/adapters/memory';
import { OptionsError } from '../../src/domain/errors';
import { RotationService } from '../../src/rotation-service';
import { COOKIE_OPT_IN, routerHarness, useRouter } from '../support/router-harness';
import { ACCESS_SECRET, REFRESH_SECRET } from '../support/secrets';

const HOST = 'api.example.com';
const SAME_ORIGIN = `https://${HOST}`;
const COOKIE = '__Secure-refresh_token';

interface ParsedSetCookie {
  name: string;
  value: string;
  attributes: Record<string, string | true>;
}

function setCookies(response: request.Response): ParsedSetCookie[] {
  const raw = response.headers['set-cookie'] as unknown as string[] | undefined;
  return (raw ?? []).map((line) => {
    const [pair = '', ...parts] = line.split(';').map((part) => part.trim());
    const index = pair.indexOf('=');
    const attributes: Record<string, string | true> = {};
    for (const part of parts) {
      const eq = part.indexOf('=');
      attributes[(eq < 0 ? part : part.slice(0, eq)).toLowerCase()] =
        eq < 0 ? true : part.slice(eq + 1);
    }
    return { name: pair.slice(0, index), value: pair.slice(index + 1), attributes };
  });
}

function onlyCookie(response: request.Response): ParsedSetCookie {
  const cookies = setCookies(response);
  expect(cookies).toHaveLength(1);
  return cookies[0]!;
}

describe('the cookie transport of the router', () => {
  const backend = useRouter(() => routerHarness());

  async function browserLogin(): Promise<{ cookie: string; accessToken: string }> {
    const response = await backend.login(undefined, COOKIE_OPT_IN);
    return { cookie: onlyCookie(response).value, accessToken: response.body.access_token };
  }

  function cookieRefresh(cookie: string) {
    return request(backend.app)
      .post('/auth/token')
      .set('Host', HOST)
      .set('Cookie', `other=1; ${COOKIE}=${cookie}`);
  }

  it('a browser that asks for the cookie at login (issue()) gets HttpOnly; Secure; SameSite=Strict; Path=/auth and no token in the body', async () => {
    const response = await backend.login(undefined, COOKIE_OPT_IN);
    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      access_token: expect.any(String),
      token_type: 'Bearer',
      expires_in: 900,
    });
    expect(response.headers['cache-control']).toBe('no-store');
    const cookie = onlyCookie(response);
    expect(cookie.name).toBe(COOKIE);
    expect(cookie.value).toMatch(/^rt_[A-Za-z0-9_-]+$/);
    expect(cookie.attributes).toEqual({
      path: '/auth',
      'max-age': '2592000', // the 30-day idle expiry, relative: the browser's clock does not matter
      expires: expect.any(String),
      httponly: true,
      secure: true,
      samesite: 'Strict',
    });
    const expires = Date.parse(cookie.attributes.expires as string);
    expect(expires - Date.now()).toBeGreaterThan(29 * 86_400_000); // the 30-day idle expiry
  });

  it('refreshes through the cookie with the CSRF header: a new cookie, still no token in the body', async () => {
    const { cookie } = await browserLogin();
    const response = await cookieRefresh(cookie)
      .set('X-Refresh-CSRF', '1')
      .set('Origin', SAME_ORIGIN)
      .set('Sec-Fetch-Site', 'same-origin');
    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      access_token: expect.any(String),
      token_type: 'Bearer',
      expires_in: 900,
    });
    const next = onlyCookie(response);
    expect(next.name).toBe(COOKIE);
    expect(next.value).not.toBe(cookie);
    expect(next.attributes).toMatchObject({
      path: '/auth',
      httponly: true,
      secure: true,
      samesite: 'Strict',
    });
    // Without Origin or Sec-Fetch-Site (non-browser or old browser), the header alone suffices.
    expect((await cookieRefresh(next.value).set('X-Refresh-CSRF', 'yes')).status).toBe(200);
  });

  it('refuses a cookie refresh without the CSRF header, from another origin or from a cross-site context, and changes nothing', async () => {
    const { cookie } = await browserLogin();
    const attempts = [
      cookieRefresh(cookie),
      cookieRefresh(cookie).set('X-Refresh-CSRF', ''),
      cookieRefresh(cookie).set('X-Refresh-CSRF', '1').set('Origin', 'https://evil.example'),
      cookieRefresh(cookie).set('X-Refresh-CSRF', '1').set('Origin', 'null'),
      cookieRefresh(cookie)
        .set('X-Refresh-CSRF', '1')
        .set('Origin', `https://${HOST}.evil.example`),
      cookieRefresh(cookie).set('X-Refresh-CSRF', '1').set('Sec-Fetch-Site', 'cross-site'),
      cookieRefresh(cookie).set('X-Refresh-CSRF', '1').set('Sec-Fetch-Site', 'same-site'),
    ];
    for (const attempt of attempts) {
      const response = await attempt;
      expect(response.status).toBe(400);
      expect(response.body.error).toBe('invalid_request');
      expect(response.headers['set-cookie']).toBeUndefined();
    }
    // The cookie was not rotated by any of them: it is still the current token.
    const ok = await cookieRefresh(cookie).set('X-Refresh-CSRF', '1');
    expect(ok.status).toBe(200);
  });

  it('serves body clients from the same deployment, and lets a body client switch to the cookie', async () => {
    const tokens = await backend.tokens();
    expect(tokens.refresh_token).toMatch(/^rt_/);
    const body = await request(backend.app)
      .post('/auth/token')
      .send({ refresh_token: tokens.refresh_token });
    expect(body.body.refresh_token).toMatch(/^rt_/);
    expect(body.headers['set-cookie']).toBeUndefined();

    const switched = await request(backend.app)
      .post('/auth/token')
      .set('X-Token-Transport', 'cookie')
      .send({ refresh_token: body.body.refresh_token });
    expect(switched.status).toBe(200);
    expect(switched.body.refresh_token).toBeUndefined();
    expect(onlyCookie(switched).name).toBe(COOKIE);
  });

  it('clears a dead cookie with the attributes it was set with', async () => {
    const response = await cookieRefresh('rt_garbage').set('X-Refresh-CSRF', '1');
    expect(response.status).toBe(400);
    expect(response.body.error).toBe('invalid_grant');
    const cleared = onlyCookie(response);
    expect(cleared).toEqual({
      name: COOKIE,
      value: '',
      attributes: {
        path: '/auth',
        expires: 'Thu, 01 Jan 1970 00:00:00 GMT',
        httponly: true,
        secure: true,
        samesite: 'Strict',
      },
    });
  });

  it('logs out through the cookie, clears it, and stays idempotent once the cookie is gone', async () => {
    const { cookie } = await browserLogin();
    const refused = await request(backend.app)
      .post('/auth/logout')
      .set('Host', HOST)
      .set('Cookie', `${COOKIE}=${cookie}`);
    expect(refused.status).toBe(400); // no CSRF header
    const out = await request(backend.app)
      .post('/auth/logout')
      .set('Host', HOST)
      .set('Cookie', `${COOKIE}=${cookie}`)
      .set('X-Refresh-CSRF', '1');
    expect(out.status).toBe(204);
    expect(onlyCookie(out)).toMatchObject({
      name: COOKIE,
      value: '',
      attributes: { path: '/auth', httponly: true, secure: true, samesite: 'Strict' },
    });
    expect((await cookieRefresh(cookie).set('X-Refresh-CSRF', '1')).body.error).toBe(
      'invalid_grant',
    );
    const again = await request(backend.app).post('/auth/logout').set('X-Refresh-CSRF', '1');
    expect(again.status).toBe(204);
    expect(again.headers['set-cookie']).toBeUndefined(); // nothing was authenticated: nothing cleared
    const nothing = await request(backend.app).post('/auth/logout');
    expect(nothing.status).toBe(400);
    expect(nothing.body.error).toBe('invalid_request');
  });

  it('a logout by body token never touches the cookie, even from a cross-site form with junk', async () => {
    const { cookie } = await browserLogin();
    const crossSite = await request(backend.app)
      .post('/auth/logout')
      .set('Host', HOST)
      .set('Origin', 'http://evil.example')
      .set('Sec-Fetch-Site', 'cross-site')
      .set('Cookie', `${COOKIE}=${cookie}`)
      .type('form')
      .send({ refresh_token: 'junk' });
    expect(crossSite.status).toBe(204);
    expect(crossSite.headers['set-cookie']).toBeUndefined();

    const other = await browserLogin();
    const byBody = await request(backend.app)
      .post('/auth/logout')
      .set('Host', HOST)
      .set('Cookie', `${COOKIE}=${cookie}`)
      .set('X-Refresh-CSRF', '1')
      .send({ refresh_token: other.cookie });
    expect(byBody.status).toBe(204);
    expect(byBody.headers['set-cookie']).toBeUndefined();
    // The body's session is gone; the cookie's session was never touched.
    expect((await cookieRefresh(other.cookie).set('X-Refresh-CSRF', '1')).status).toBe(400);
    expect((await cookieRefresh(cookie).set('X-Refresh-CSRF', '1')).status).toBe(200);
  });

  it('refuses a request carrying two refresh cookies (cookie tossing) on /token and /logout, and changes nothing', async () => {
    const victim = await browserLogin();
    const attacker = await browserLogin();
    const tossed = `${COOKIE}=${attacker.cookie}; ${COOKIE}=${victim.cookie}`;
    for (const path of ['/auth/token', '/auth/logout']) {
      const response = await request(backend.app)
        .post(path)
        .set('Host', HOST)
        .set('X-Refresh-CSRF', '1')
        .set('Cookie', tossed);
      expect(response.status).toBe(400);
      expect(response.body.error).toBe('invalid_request');
      expect(response.body.error_description).toMatch(/2 __Secure-refresh_token cookies/);
      expect(response.headers['set-cookie']).toBeUndefined();
    }
    for (const { cookie } of [victim, attacker]) {
      expect((await cookieRefresh(cookie).set('X-Refresh-CSRF', '1')).status).toBe(200);
    }
  });

  it('deleting the current session through /auth/sessions clears the cookie', async () => {
    const { accessToken } = await browserLogin();
    const listed = await request(backend.app)
      .get('/auth/sessions')
      .set('Authorization', `Bearer ${accessToken}`);
    const current = listed.body.sessions.find((s: { current: boolean }) => s.current).id as string;
    const deleted = await request(backend.app)
      .delete(`/auth/sessions/${current}`)
      .set('Authorization', `Bearer ${accessToken}`);
    expect(deleted.status).toBe(204);
    expect(onlyCookie(deleted)).toMatchObject({ name: COOKIE, value: '' });
  });
});

describe('cookie transport options', () => {
  const service = new RotationService({
    repository: new MemoryRefreshTokenRepository(),
    versions: new MemoryVersionStore(),
    accessToken: { secret: ACCESS_SECRET },
    refreshToken: { secrets: [REFRESH_SECRET] },
  });

  function warnings() {
    const lines: string[] = [];
    return {
      lines,
      logger: {
        error: () => undefined,
        warn: (_o: object, message?: string) => void lines.push(message ?? ''),
      },
    };
  }

  it('warns once at start-up when Secure is off outside development, and not in development', () => {
    const prod = warnings();
    createRefreshRouter({ service, cookie: { secure: false }, logger: prod.logger });
    expect(prod.lines).toHaveLength(1);
    expect(prod.lines[0]).toContain('without Secure');
    const dev = warnings();
    createRefreshRouter({
      service,
      cookie: { secure: false, development: true },
      logger: dev.logger,
    });
    expect(dev.lines).toHaveLength(0);
    const secure = warnings();
    createRefreshRouter({ service, cookie: true, logger: secure.logger });
    expect(secure.lines).toHaveLength(0);
  });

  it('refuses names browsers would drop or that cannot be scoped to the router', () => {
    expect(() =>
      createRefreshRouter({
        service,
        cookie: { secure: false, name: '__Secure-rt', development: true },
      }),
    ).toThrow(OptionsError);
    expect(() => createRefreshRouter({ service, cookie: { name: '__Host-rt' } })).toThrow(
      /__Host-/,
    );
    expect(() => createRefreshRouter({ service, cookie: { name: 'bad name' } })).toThrow(
      OptionsError,
    );
    expect(() => createRefreshRouter({ service, cookie: { csrfHeader: 'bad header' } })).toThrow(
      OptionsError,
    );
    expect(() => createRefreshRouter({ service, cookie: { path: 'auth' } })).toThrow(OptionsError);
    expect(() => createRefreshRouter({ service, bodyLimit: 0 })).toThrow(OptionsError);
  });

  it('without Secure the cookie is named refresh_token and carries no Secure attribute', async () => {
    const auth = createRefreshRouter({ service, cookie: { secure: false, development: true } });
    const app = express().use('/auth', auth);
    const { refreshToken } = await service.issue({ userId: 'u1' });
    const response = await request(app)
      .post('/auth/token')
      .set('X-Token-Transport', 'cookie')
      .send({ refresh_token: refreshToken });
    const cookie = onlyCookie(response);
    expect(cookie.name).toBe('refresh_token');
    expect(cookie.attributes.secure).toBeUndefined();
    expect(cookie.attributes.httponly).toBe(true);
  });

  it('issue() outside the mount path needs cookie.path, and then uses it', async () => {
    const unscoped = createRefreshRouter({ service, cookie: true });
    const scoped = createRefreshRouter({ service, cookie: { path: '/auth' } });
    const app = express()
      .use('/auth', scoped)
      .post('/login-unscoped', (_req, res, next) => {
        unscoped.issue(res, { userId: 'u1' }).then((body) => res.json(body), next);
      })
      .post('/login-scoped', (_req, res, next) => {
        scoped
          .issue(res, { userId: 'u1', client: { label: 'test' } })
          .then((body) => res.json(body), next);
      })
      .use(
        (
          error: Error,
          _req: express.Request,
          res: express.Response,
          _next: express.NextFunction,
        ) => {
          res.status(500).json({ message: error.message });
        },
      );
    const failed = await request(app).post('/login-unscoped').set('X-Token-Transport', 'cookie');
    expect(failed.status).toBe(500);
    expect(failed.body.message).toContain('cookie.path');
    const ok = await request(app).post('/login-scoped').set('X-Token-Transport', 'cookie');
    expect(ok.status).toBe(200);
    expect(onlyCookie(ok).attributes.path).toBe('/auth');
    // Without the opt-in header the same helper answers a body client.
    const body = await request(app).post('/login-unscoped');
    expect(body.body.refresh_token).toMatch(/^rt_/);
    expect(body.headers['set-cookie']).toBeUndefined();
  });

  it('accepts a cookie refresh from an allowed sibling origin', async () => {
    const app = express().use(
      '/auth',
      createRefreshRouter({ service, cookie: { allowedOrigins: ['https://app.example.com'] } }),
    );
    const { refreshToken } = await service.issue({ userId: 'u1' });
    const response = await request(app)
      .post('/auth/token')
      .set('Host', HOST)
      .set('Cookie', `${COOKIE}=${refreshToken}`)
      .set('X-Refresh-CSRF', '1')
      .set('Origin', 'https://app.example.com')
      .set('Sec-Fetch-Site', 'same-site');
    expect(response.status).toBe(200);
  });
});
