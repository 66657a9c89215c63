/**
 * `authenticate({ dpop })` on a bare `express()` (RFC 9449 §7): a DPoP-bound access token passes
 * with `Authorization: DPoP` and a proof by its key carrying `ath`; every way to get that wrong is
 * a 401 with a `WWW-Authenticate: DPoP` challenge, never a 500; a bound token sent as `Bearer` is
 * refused with or without the option; plain bearer tokens keep working as before.
 */
import express, { type RequestHandler } from 'express';
import request from 'supertest';
import { authenticate, type AuthenticateOptions } from '../../src/adapters/express';
import { JwtAccessTokens } from '../../src/adapters/jsonwebtoken/jwt-access-tokens';
import {
  InlineTokenJobs,
  MemoryDPoPReplayCache,
  MemoryRefreshTokenRepository,
  MemoryVersionStore,
} from '../../src/adapters/memory';
import { resolveAccessTokenKeys } from '../../src/domain/access-token';
import { OptionsError } from '../../src/domain/errors';
import { RotationService } from '../../src/rotation-service';
import { ShiftedClock } from '../support/fake-clock';
import { ACCESS_SECRET, REFRESH_SECRET } from '../support/secrets';
import { ath, makeProof, proofKey, type ProofKey } from '../support/dpop-proofs';

const ORIGIN = 'https://api.example.com';
const ALGS = 'algs="ES256 EdDSA RS256 PS256"';
const NONCE_SECRET = 'a-nonce-secret-of-at-least-32-bytes!!';

function setup(dpop: Partial<NonNullable<AuthenticateOptions['dpop']>> = {}) {
  const clock = new ShiftedClock();
  const repository = new MemoryRefreshTokenRepository();
  const service = new RotationService({
    repository,
    versions: new MemoryVersionStore(),
    jobs: new InlineTokenJobs(repository),
    clock,
    accessToken: { secret: ACCESS_SECRET },
    refreshToken: { secrets: [REFRESH_SECRET] },
  });
  // The service's own signer, as its binding will use it: same key, so the service verifies it.
  const signer = new JwtAccessTokens({
    ...resolveAccessTokenKeys({ secret: ACCESS_SECRET }),
    ttlMs: 900_000,
  });
  const bound = (key: ProofKey) =>
    signer.sign(
      { userId: 'alice', sessionId: 's'.repeat(32), version: 0, jkt: key.jkt },
      clock.now(),
    );
  const replayCache = new MemoryDPoPReplayCache({ clock });
  const me: RequestHandler = (req, res) => {
    res.json({ userId: req.auth!.userId, jkt: req.auth!.claims.cnf?.jkt ?? null });
  };
  const app = express()
    .get(
      '/me',
      authenticate({ service, dpop: { publicOrigin: ORIGIN, replayCache, clock, ...dpop } }),
      me,
    )
    .post(
      '/me',
      authenticate({ service, dpop: { publicOrigin: ORIGIN, replayCache, clock, ...dpop } }),
      me,
    )
    .get('/bearer-only', authenticate({ service }), me);
  const seconds = () => Math.floor(clock.now().getTime() / 1000);
  /** A GET proof for `path` with the token's `ath`, by `key`. */
  const proofFor = (
    key: ProofKey,
    token: string,
    claims: Record<string, unknown> = {},
    path = '/me',
  ) =>
    makeProof(key, `${ORIGIN}${path}`, {
      now: seconds(),
      claims: { htm: 'GET', ath: ath(token), ...claims },
    });
  return { app, service, clock, bound, proofFor, seconds };
}

let es256: ProofKey;
let eddsa: ProofKey;
let other: ProofKey;
beforeAll(async () => {
  [es256, eddsa, other] = await Promise.all([proofKey('ES256'), proofKey('EdDSA'), proofKey()]);
});

function expectDpopRefusal(response: request.Response, error: string): void {
  expect(response.status).toBe(401);
  expect(response.body.error).toBe(error);
  expect(response.headers['www-authenticate']).toBe(`DPoP error="${error}", ${ALGS}`);
  expect(response.headers['cache-control']).toBe('no-store');
}

describe('authenticate({ dpop }) accepts', () => {
  it.each([
    ['ES256', () => es256],
    ['EdDSA', () => eddsa],
  ])(
    'a bound token with the DPoP scheme and a %s proof by its key carrying ath',
    async (_alg, key) => {
      const { app, bound, proofFor } = setup();
      const token = bound(key());
      const response = await request(app)
        .get('/me?page=2')
        .set('Authorization', `DPoP ${token}`)
        .set('DPoP', await proofFor(key(), token));
      expect(response.status).toBe(200);
      expect(response.body).toEqual({ userId: 'alice', jkt: key().jkt });
    },
  );

  it('plain bearer tokens without cnf, exactly as before', async () => {
    const { app, service } = setup();
    const { accessToken } = await service.issue({ userId: 'bob' });
    for (const path of ['/me', '/bearer-only']) {
      const response = await request(app).get(path).set('Authorization', `Bearer ${accessToken}`);
      expect(response.status).toBe(200);
      expect(response.body).toEqual({ userId: 'bob', jkt: null });
    }
  });

  it('challenges a request without credentials with both schemes', async () => {
    const { app } = setup();
    const response = await request(app).get('/me');
    expect(response.status).toBe(401);
    expect(response.headers['www-authenticate']).toBe(`Bearer, DPoP ${ALGS}`);
  });
});

describe('authenticate({ dpop }) refuses', () => {
  it('a bound token sent as Bearer: invalid_token with a DPoP challenge, with or without the option', async () => {
    const { app, bound } = setup();
    const token = bound(es256);
    for (const path of ['/me', '/bearer-only']) {
      const response = await request(app).get(path).set('Authorization', `Bearer ${token}`);
      expect(response.status).toBe(401);
      expect(response.body.error).toBe('invalid_token');
      expect(response.headers['www-authenticate']).toBe(`DPoP error="invalid_token", ${ALGS}`);
    }
  });

  it('an unbound token sent with the DPoP scheme: invalid_token', async () => {
    const { app, service, proofFor } = setup();
    const { accessToken } = await service.issue({ userId: 'bob' });
    const response = await request(app)
      .get('/me')
      .set('Authorization', `DPoP ${accessToken}`)
      .set('DPoP', await proofFor(es256, accessToken));
    expect(response.status).toBe(401);
    expect(response.headers['www-authenticate']).toBe(`DPoP error="invalid_token", ${ALGS}`);
  });

  it('a DPoP token without a proof', async () => {
    const { app, bound } = setup();
    const response = await request(app)
      .get('/me')
      .set('Authorization', `DPoP ${bound(es256)}`);
    expectDpopRefusal(response, 'invalid_dpop_proof');
    expect(response.body.error_description).toMatch(/proof is required/);
  });

  it('a proof by another key than the token is bound to', async () => {
    const { app, bound, proofFor } = setup();
    const token = bound(es256);
    const response = await request(app)
      .get('/me')
      .set('Authorization', `DPoP ${token}`)
      .set('DPoP', await proofFor(other, token));
    expectDpopRefusal(response, 'invalid_dpop_proof');
    expect(response.body.error_description).toMatch(/not signed by the key/);
  });

  it('a proof whose ath is another token’s', async () => {
    const { app, bound, proofFor } = setup();
    const token = bound(es256);
    const response = await request(app)
      .get('/me')
      .set('Authorization', `DPoP ${token}`)
      .set('DPoP', await proofFor(es256, token, { ath: ath(bound(es256)) }));
    expectDpopRefusal(response, 'invalid_dpop_proof');
    expect(response.body.error_description).toMatch(/ath/);
  });

  it('a proof for another path (htu) or another method (htm)', async () => {
    const { app, bound, proofFor } = setup();
    const token = bound(es256);
    for (const proof of [
      await proofFor(es256, token, {}, '/other'),
      await proofFor(es256, token, { htu: `https://evil.example.com/me` }),
      await proofFor(es256, token, { htm: 'POST' }),
    ]) {
      const response = await request(app)
        .get('/me')
        .set('Authorization', `DPoP ${token}`)
        .set('DPoP', proof);
      expectDpopRefusal(response, 'invalid_dpop_proof');
    }
  });

  it('a proof sent twice (replayed jti)', async () => {
    const { app, bound, proofFor } = setup();
    const token = bound(es256);
    const proof = await proofFor(es256, token);
    const send = () =>
      request(app).get('/me').set('Authorization', `DPoP ${token}`).set('DPoP', proof);
    expect((await send()).status).toBe(200);
    const replay = await send();
    expectDpopRefusal(replay, 'invalid_dpop_proof');
    expect(replay.body.error_description).toMatch(/already used/);
  });

  it('two DPoP headers, even when one of them is valid', async () => {
    const { app, bound, proofFor } = setup();
    const token = bound(es256);
    const response = await request(app)
      .get('/me')
      .set('Authorization', `DPoP ${token}`)
      // Two header lines (Node joins them with ", " in req.headers).
      .set('DPoP', [await proofFor(es256, token), await proofFor(es256, token)] as never);
    expectDpopRefusal(response, 'invalid_dpop_proof');
    expect(response.body.error_description).toMatch(/exactly one DPoP header/);
  });

  it('a request path with dot segments, whose normal form is what the proof names', async () => {
    const { service, bound, proofFor } = setup();
    const replayCache = new MemoryDPoPReplayCache();
    // A guard on every path, as app.use(authenticate(...)) is: it sees the raw request path.
    const app = express().use(
      authenticate({ service, dpop: { publicOrigin: ORIGIN, replayCache } }),
    );
    app.use((_req, res) => res.end());
    const token = bound(es256);
    const response = await request(app)
      .get('/x/../me')
      .set('Authorization', `DPoP ${token}`)
      .set('DPoP', await proofFor(es256, token));
    expectDpopRefusal(response, 'invalid_dpop_proof');
    expect(response.body.error_description).toMatch(/normal form/);
  });

  it('any junk in the DPoP header with a 401, never a 500', async () => {
    const { app, bound } = setup();
    const token = bound(es256);
    const samples = [
      'x',
      '{"alg":"none"}',
      'a.b.c',
      `${Buffer.from('{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}}').toString('base64url')}.e30.AAAA`,
      'é'.repeat(10),
      'A'.repeat(9_000),
    ];
    for (const sample of samples) {
      const response = await request(app)
        .get('/me')
        .set('Authorization', `DPoP ${token}`)
        .set('DPoP', sample);
      expect(response.status).toBe(401);
      expect(response.body.error).toBe('invalid_dpop_proof');
    }
  });
});

describe('authenticate({ dpop: { nonce } })', () => {
  it('asks for the nonce with use_dpop_nonce and DPoP-Nonce, then accepts the retry and sends a fresh nonce', async () => {
    const { app, bound, proofFor } = setup({ nonce: { secret: NONCE_SECRET } });
    const token = bound(es256);
    const first = await request(app)
      .get('/me')
      .set('Authorization', `DPoP ${token}`)
      .set('DPoP', await proofFor(es256, token));
    expectDpopRefusal(first, 'use_dpop_nonce');
    const nonce = first.headers['dpop-nonce'];
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const retry = await request(app)
      .get('/me')
      .set('Authorization', `DPoP ${token}`)
      .set('DPoP', await proofFor(es256, token, { nonce }));
    expect(retry.status).toBe(200);
    expect(retry.headers['dpop-nonce']).toBe(nonce);
  });

  it('refuses a nonce from an older time step with use_dpop_nonce and the current nonce', async () => {
    const { app, bound, proofFor, clock } = setup({ nonce: { secret: NONCE_SECRET, step: '1m' } });
    const token = bound(es256);
    const old = (await request(app).get('/me')).headers['dpop-nonce'];
    clock.advance(120_000);
    const response = await request(app)
      .get('/me')
      .set('Authorization', `DPoP ${bound(es256)}`)
      .set('DPoP', await proofFor(es256, token, { nonce: old }));
    expect(response.status).toBe(401);
    expect(response.body.error).toBe('use_dpop_nonce');
    expect(response.headers['dpop-nonce']).not.toBe(old);
  });
});

describe('authenticate({ dpop }) options', () => {
  const replayCache = new MemoryDPoPReplayCache();
  const service = setup().service;
  it.each([
    ['a publicOrigin with a path', { publicOrigin: 'https://api.example.com/v1', replayCache }],
    ['a publicOrigin over http', { publicOrigin: 'http://api.example.com', replayCache }],
    ['no publicOrigin', { replayCache }],
    ['no replayCache', { publicOrigin: ORIGIN }],
  ])('refuses %s with an OptionsError', (_label, dpop) => {
    expect(() => authenticate({ service, dpop: dpop as never })).toThrow(OptionsError);
  });
});
