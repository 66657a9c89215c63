/**
 * Device Bound Session Credentials on the cookie transport (`cookie: { dbsc }`), spoken as
 * Chromium speaks it (issue 23): the registration header of a cookie login, the registration and
 * refresh endpoints under the router's path, and every refusal, with proofs signed by a test key
 * (jose's SignJWT). No browser here: test/browser has the real one.
 */
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import express from 'express';
import request from 'supertest';
import { createRefreshRouter } from '../../src/adapters/express';
import { OptionsError } from '../../src/domain/errors';
import { hashToken } from '../../src/domain/token-codec';
import { proofKey, type ProofKey } from '../support/dpop-proofs';
import { ShiftedClock } from '../support/fake-clock';
import { COOKIE_OPT_IN, routerHarness, type RouterHarness } from '../support/router-harness';

const HOST = 'api.example.com';
const COOKIE = '__Secure-refresh_token';
const SECRET = 'a-dbsc-secret-of-at-least-32-bytes!!!';
const MINUTE = 60_000;
const SAME_ORIGIN = { Host: HOST, 'Sec-Fetch-Site': 'same-origin' };

/** A device key: the same shape as a DPoP client key (test/support/dpop-proofs.ts). */
type DeviceKey = ProofKey;
const deviceKey = (alg: 'ES256' | 'RS256' = 'ES256'): Promise<DeviceKey> => proofKey(alg);

/** A `dbsc+jwt` as Chromium signs it: no iat, no aud; `header` and `claims` change it. */
async function proof(
  key: DeviceKey,
  claims: Record<string, unknown>,
  header: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, typ: 'dbsc+jwt', ...header } as { alg: string })
    .sign(key.privateKey);
}

/** The registration header's parameters. */
function registrationOf(response: request.Response) {
  const header = response.headers['secure-session-registration'] as string | undefined;
  if (header === undefined) throw new Error('no Secure-Session-Registration header');
  const value = (name: string) => new RegExp(`;${name}="([^"]*)"`).exec(header)?.[1] ?? '';
  return {
    header,
    path: value('path'),
    challenge: value('challenge'),
    authorization: value('authorization'),
  };
}

function cookieOf(response: request.Response): { value: string; attributes: string } | undefined {
  const lines = (response.headers['set-cookie'] as unknown as string[] | undefined) ?? [];
  const line = lines.find((entry) => entry.startsWith(`${COOKIE}=`));
  if (line === undefined) return undefined;
  const [pair = '', ...rest] = line.split(';');
  return { value: decodeURIComponent(pair.slice(COOKIE.length + 1)), attributes: rest.join(';') };
}

/** The refresh cookie's lifetime in seconds (`Max-Age`: relative, whatever the browser's clock). */
function maxAgeOf(response: request.Response): number {
  const maxAge = /Max-Age=(\d+)/.exec(cookieOf(response)?.attributes ?? '')?.[1];
  return maxAge === undefined ? NaN : Number(maxAge);
}

describe('DBSC on the cookie transport', () => {
  let h: RouterHarness;
  let clock: ShiftedClock;

  beforeEach(() => {
    clock = new ShiftedClock();
    h = routerHarness(
      { cookie: { dbsc: { secret: SECRET, boundTtl: '10m', clock } } },
      undefined,
      clock,
    );
  });

  afterEach(async () => {
    await h.close();
  });

  async function cookieLogin() {
    const login = await h.login(undefined, { ...COOKIE_OPT_IN, Host: HOST });
    return { login, token: cookieOf(login)!.value, registration: registrationOf(login) };
  }

  function register(
    token: string,
    response: string | undefined,
    headers: Record<string, string> = SAME_ORIGIN,
  ) {
    const call = request(h.app)
      .post('/auth/dbsc/register')
      .set(headers)
      .set('Cookie', `${COOKIE}=${token}`);
    return response === undefined ? call : call.set('Secure-Session-Response', response);
  }

  function refresh(
    sessionId: string,
    response?: string,
    headers: Record<string, string> = SAME_ORIGIN,
  ) {
    const call = request(h.app)
      .post('/auth/dbsc/refresh')
      .set(headers)
      .set('Sec-Secure-Session-Id', sessionId);
    return response === undefined ? call : call.set('Secure-Session-Response', response);
  }

  /** Log in with the cookie and register `key`: the bound session. */
  async function boundSession(key: DeviceKey) {
    const { token, registration } = await cookieLogin();
    const answer = await register(
      token,
      await proof(
        key,
        { jti: registration.challenge, authorization: registration.authorization },
        { jwk: key.publicJwk },
      ),
    );
    expect(answer.status).toBe(200);
    return { token, sessionId: answer.body.session_identifier as string, answer };
  }

  async function challengeFor(sessionId: string): Promise<string> {
    const answer = await refresh(sessionId);
    expect(answer.status).toBe(403);
    const header = answer.headers['secure-session-challenge'] as string;
    expect(header).toBe(`"${/^"([^"]+)"/.exec(header)?.[1]}";id="${sessionId}"`);
    return /^"([^"]+)"/.exec(header)![1]!;
  }

  it('a cookie login offers registration under the router path; a body login does not', async () => {
    const { registration } = await cookieLogin();
    expect(registration.header).toMatch(/^\(ES256 RS256\);path="\/auth\/dbsc\/register";/);
    expect(registration.challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(registration.authorization).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const body = await h.login(undefined, { Host: HOST });
    expect(body.headers['secure-session-registration']).toBeUndefined();
  });

  it('registration binds the session to the public jwk, answers the instructions, and shortens the cookie to boundTtl', async () => {
    const key = await deviceKey();
    const { sessionId, answer, token } = await boundSession(key);
    expect(answer.body).toEqual({
      session_identifier: sessionId,
      refresh_url: '/auth/dbsc/refresh',
      scope: {
        origin: `https://${HOST}`,
        include_site: false,
        scope_specification: [{ type: 'exclude', domain: HOST, path: '/favicon.ico' }],
      },
      credentials: [
        {
          type: 'cookie',
          name: COOKIE,
          attributes: 'Path=/auth; Secure; HttpOnly; SameSite=Strict',
        },
      ],
    });
    expect(cookieOf(answer)?.value).toBe(token);
    expect(maxAgeOf(answer)).toBe(600);
    const record = await h.repository.findBySessionId(sessionId);
    expect(record?.binding).toMatchObject({ method: 'dbsc', jkt: key.jkt, jwk: key.publicJwk });
  });

  it('an RS256 device key registers and refreshes too', async () => {
    const key = await deviceKey('RS256');
    const { sessionId } = await boundSession(key);
    const challenge = await challengeFor(sessionId);
    expect((await refresh(sessionId, await proof(key, { jti: challenge }))).status).toBe(200);
  });

  describe('registration refuses, and binds nothing', () => {
    async function refused(
      make: (key: DeviceKey, registration: ReturnType<typeof registrationOf>) => Promise<string>,
      message: RegExp,
    ) {
      const key = await deviceKey();
      const { token, registration } = await cookieLogin();
      const before = await h.repository.findByTokenHash(hashToken(token));
      const answer = await register(token, await make(key, registration));
      expect(answer.status).toBe(400);
      expect(answer.body.error_description).toMatch(message);
      expect(cookieOf(answer)).toBeUndefined();
      expect(await h.repository.findBySessionId(before!.sessionId)).toEqual(before);
    }

    const good = (key: DeviceKey, r: ReturnType<typeof registrationOf>) => ({
      claims: { jti: r.challenge, authorization: r.authorization },
      header: { jwk: key.publicJwk },
    });

    it('a wrong typ', async () => {
      await refused(async (key, r) => {
        const { claims, header } = good(key, r);
        return proof(key, claims, { ...header, typ: 'dpop+jwt' });
      }, /typ must be dbsc\+jwt/);
    });

    it('an alg off the allow-list (HS256, none)', async () => {
      await refused(async (_key, r) => {
        const secret = randomBytes(32);
        return new SignJWT({ jti: r.challenge, authorization: r.authorization })
          .setProtectedHeader({ alg: 'HS256', typ: 'dbsc+jwt' })
          .sign(secret);
      }, /alg must be one of ES256, RS256/);
      await refused(async (key, r) => {
        const header = Buffer.from(
          JSON.stringify({ alg: 'none', typ: 'dbsc+jwt', jwk: key.publicJwk }),
        ).toString('base64url');
        const payload = Buffer.from(
          JSON.stringify({ jti: r.challenge, authorization: r.authorization }),
        ).toString('base64url');
        return `${header}.${payload}.AAAA`;
      }, /alg must be one of/);
    });

    it('a private jwk, or none', async () => {
      await refused(async (key, r) => {
        const { claims } = good(key, r);
        return proof(key, claims, { jwk: key.privateJwk });
      }, /public key \(no private members\)/);
      await refused(async (key, r) => proof(key, good(key, r).claims), /public key as jwk/);
    });

    it('a signature by another key than the jwk', async () => {
      const other = await deviceKey();
      await refused(async (key, r) => {
        const { claims } = good(key, r);
        return proof(other, claims, { jwk: key.publicJwk });
      }, /signature does not verify/);
    });

    it('a challenge of another session, or of an old time step', async () => {
      const { registration: theirs } = await cookieLogin();
      await refused(async (key, r) => {
        return proof(
          key,
          { jti: theirs.challenge, authorization: r.authorization },
          { jwk: key.publicJwk },
        );
      }, /jti must be a current challenge of this session/);
      await refused(async (key, r) => {
        clock.advance(10 * MINUTE + 1);
        return proof(key, good(key, r).claims, { jwk: key.publicJwk });
      }, /jti must be a current challenge/);
    });

    it('another session’s authorization value, or none', async () => {
      const { registration: theirs } = await cookieLogin();
      await refused(async (key, r) => {
        return proof(
          key,
          { jti: r.challenge, authorization: theirs.authorization },
          { jwk: key.publicJwk },
        );
      }, /authorization must be the value given for this session/);
      await refused(
        async (key, r) => proof(key, { jti: r.challenge }, { jwk: key.publicJwk }),
        /authorization/,
      );
    });

    it('a missing response header', async () => {
      await refused(async () => '', /Secure-Session-Response header is required/);
    });
  });

  it('a replayed registration response binds nothing new', async () => {
    const key = await deviceKey();
    const { token, registration } = await cookieLogin();
    const response = await proof(
      key,
      { jti: registration.challenge, authorization: registration.authorization },
      { jwk: key.publicJwk },
    );
    expect((await register(token, response)).status).toBe(200);
    const record = await h.repository.findByTokenHash(hashToken(token));
    const replay = await register(token, response);
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe('invalid_grant');
    expect(await h.repository.findBySessionId(record!.sessionId)).toEqual(record);
  });

  it('cross-site or cross-origin requests are refused at both endpoints', async () => {
    const key = await deviceKey();
    const { token, registration } = await cookieLogin();
    const response = await proof(
      key,
      { jti: registration.challenge, authorization: registration.authorization },
      { jwk: key.publicJwk },
    );
    const crossOrigin: Record<string, string>[] = [
      { Host: HOST, 'Sec-Fetch-Site': 'cross-site' },
      { Host: HOST, 'Sec-Fetch-Site': 'same-site' },
      { Host: HOST, Origin: 'https://evil.example' },
    ];
    for (const headers of crossOrigin) {
      const answer = await register(token, response, headers);
      expect(answer.status).toBe(400);
      expect(answer.body.error_description).toMatch(/same origin only/);
    }
    const { sessionId } = await boundSession(key);
    const answer = await refresh(sessionId, undefined, {
      Host: HOST,
      'Sec-Fetch-Site': 'cross-site',
    });
    expect(answer.status).toBe(400);
  });

  it('the refresh endpoint challenges, then rotates by proof with the stored key and extends the bound lifetime', async () => {
    const key = await deviceKey();
    const { sessionId, token } = await boundSession(key);
    clock.advance(11 * MINUTE);
    // The copied cookie is refused past boundTtl.
    const copied = await request(h.app)
      .post('/auth/token')
      .set({ Host: HOST, 'X-Refresh-CSRF': '1' })
      .set('Cookie', `${COOKIE}=${token}`);
    expect(copied.status).toBe(400);
    expect(copied.body.error).toBe('invalid_grant');

    const challenge = await challengeFor(sessionId);
    // Chromium's refresh proof: no jwk in the header, payload { jti }.
    const answer = await refresh(sessionId, await proof(key, { jti: challenge }));
    expect(answer.status).toBe(200);
    expect(answer.body.session_identifier).toBe(sessionId);
    const fresh = cookieOf(answer)!.value;
    expect(fresh).not.toBe(token);
    expect(maxAgeOf(answer)).toBe(600);
    const record = await h.repository.findBySessionId(sessionId);
    expect(record?.binding).toMatchObject({ method: 'dbsc', jkt: key.jkt });
    // The new cookie refreshes at POST /token, inside the extended bound lifetime.
    const rotated = await request(h.app)
      .post('/auth/token')
      .set({ Host: HOST, 'X-Refresh-CSRF': '1' })
      .set('Cookie', `${COOKIE}=${fresh}`);
    expect(rotated.status).toBe(200);
  });

  describe('the refresh endpoint refuses, and changes nothing', () => {
    async function expectRefused(sessionId: string, response: string, message: RegExp) {
      const before = await h.repository.findBySessionId(sessionId);
      const answer = await refresh(sessionId, response);
      expect(answer.status).toBe(400);
      expect(answer.body.error_description).toMatch(message);
      expect(cookieOf(answer)).toBeUndefined();
      expect(await h.repository.findBySessionId(sessionId)).toEqual(before);
    }

    it('a proof by another key than the stored one (even with its own jwk in the header)', async () => {
      const key = await deviceKey();
      const thief = await deviceKey();
      const { sessionId } = await boundSession(key);
      const challenge = await challengeFor(sessionId);
      await expectRefused(sessionId, await proof(thief, { jti: challenge }), /signature/);
      await expectRefused(
        sessionId,
        await proof(thief, { jti: challenge }, { jwk: thief.publicJwk }),
        /signature/,
      );
    });

    it('a wrong typ or alg', async () => {
      const key = await deviceKey();
      const { sessionId } = await boundSession(key);
      const challenge = await challengeFor(sessionId);
      await expectRefused(sessionId, await proof(key, { jti: challenge }, { typ: 'JWT' }), /typ/);
      const hs = await new SignJWT({ jti: challenge })
        .setProtectedHeader({ alg: 'HS256', typ: 'dbsc+jwt' })
        .sign(randomBytes(32));
      await expectRefused(sessionId, hs, /alg must be one of/);
    });
  });

  describe('a proof by the stored key over a challenge that is not current is asked again (403), and changes nothing', () => {
    async function expectAskedAgain(sessionId: string, response: string) {
      const before = await h.repository.findBySessionId(sessionId);
      const answer = await refresh(sessionId, response);
      expect(answer.status).toBe(403);
      expect(answer.headers['secure-session-challenge']).toBe(
        `"${await challengeFor(sessionId)}";id="${sessionId}"`,
      );
      expect(cookieOf(answer)).toBeUndefined();
      expect(await h.repository.findBySessionId(sessionId)).toEqual(before);
    }

    it('a challenge of another session, of the registration, or of an old time step', async () => {
      const key = await deviceKey();
      const { sessionId } = await boundSession(key);
      const other = await boundSession(key);
      const theirs = await challengeFor(other.sessionId);
      await expectAskedAgain(sessionId, await proof(key, { jti: theirs }));
      const { registration } = await cookieLogin();
      await expectAskedAgain(sessionId, await proof(key, { jti: registration.challenge }));
      const challenge = await challengeFor(sessionId);
      clock.advance(10 * MINUTE + 1);
      await expectAskedAgain(sessionId, await proof(key, { jti: challenge }));
    });

    it('a replayed refresh response, once its rotation has happened', async () => {
      const key = await deviceKey();
      const { sessionId } = await boundSession(key);
      const response = await proof(key, { jti: await challengeFor(sessionId) });
      expect((await refresh(sessionId, response)).status).toBe(200);
      await expectAskedAgain(sessionId, response);
    });

    it('a challenge a POST /token of the same cookie has moved past (Chromium refreshing while the page does)', async () => {
      const key = await deviceKey();
      const { sessionId, token } = await boundSession(key);
      const challenge = await challengeFor(sessionId);
      const rotated = await request(h.app)
        .post('/auth/token')
        .set({ Host: HOST, 'X-Refresh-CSRF': '1' })
        .set('Cookie', `${COOKIE}=${token}`);
      expect(rotated.status).toBe(200);
      await expectAskedAgain(sessionId, await proof(key, { jti: challenge }));
      const retried = await refresh(
        sessionId,
        await proof(key, { jti: await challengeFor(sessionId) }),
      );
      expect(retried.status).toBe(200);
    });
  });

  it('a revoked, outdated or unknown session answers {"continue": false} with its id and clears the cookie', async () => {
    const key = await deviceKey();
    const revoked = await boundSession(key);
    await h.service.revokeSession(revoked.sessionId);
    const challenge = 'x'.repeat(43);
    for (const response of [undefined, await proof(key, { jti: challenge })]) {
      const answer = await refresh(revoked.sessionId, response);
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ session_identifier: revoked.sessionId, continue: false });
      expect(cookieOf(answer)?.attributes).toMatch(/Expires=Thu, 01 Jan 1970/);
    }
    const outdated = await boundSession(key);
    const userId = (await h.repository.findBySessionId(outdated.sessionId))!.userId;
    await h.service.revokeAllForUser(userId);
    expect((await refresh(outdated.sessionId)).body).toEqual({
      session_identifier: outdated.sessionId,
      continue: false,
    });
    const unknown = 'f'.repeat(32);
    expect((await refresh(unknown)).body).toEqual({
      session_identifier: unknown,
      continue: false,
    });
    expect((await refresh('')).body).toEqual({ session_identifier: '', continue: false });
  });

  it('a cookie login bound by DPoP is offered no registration (a binding is never replaced)', async () => {
    const app = express();
    const router = createRefreshRouter({
      service: h.service,
      cookie: { path: '/auth', dbsc: { secret: SECRET } },
    });
    app.post('/auth/login', (_req, res, next) => {
      router
        .issue(res, { userId: 'dpop-user', dpop: { jkt: 'A'.repeat(43) } })
        .then((body) => res.json(body), next);
    });
    app.use('/auth', router);
    const login = await request(app)
      .post('/auth/login')
      .set({ ...COOKIE_OPT_IN, Host: HOST });
    expect(login.status).toBe(200);
    expect(login.body.token_type).toBe('DPoP');
    expect(login.headers['secure-session-registration']).toBeUndefined();
  });

  it('without cookie.dbsc the endpoints do not exist and a cookie login offers nothing', async () => {
    const plain = routerHarness({ cookie: true });
    try {
      const login = await plain.login(undefined, { ...COOKIE_OPT_IN, Host: HOST });
      expect(login.headers['secure-session-registration']).toBeUndefined();
      expect((await request(plain.app).post('/auth/dbsc/register')).status).toBe(404);
      expect((await request(plain.app).post('/auth/dbsc/refresh')).status).toBe(404);
    } finally {
      await plain.close();
    }
  });

  it('refuses options that cannot work: a short secret, boundTtl under 5m, plain-http cookies, unknown algorithms', () => {
    const service = h.service;
    const make = (cookie: object) => () => createRefreshRouter({ service, cookie });
    expect(make({ dbsc: { secret: 'short' } })).toThrow(OptionsError);
    expect(make({ dbsc: { secret: SECRET, boundTtl: '299999ms' } })).toThrow(/at least 5m/);
    expect(make({ dbsc: { secret: SECRET, boundTtl: '5m' } })).not.toThrow();
    expect(make({ secure: false, development: true, dbsc: { secret: SECRET } })).toThrow(
      /HTTPS only/,
    );
    expect(make({ dbsc: { secret: SECRET, algorithms: ['HS256'] } })).toThrow(/algorithms/);
  });
});
