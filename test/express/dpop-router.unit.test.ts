/**
 * The token router's `dpop` option on a bare `express()`: validated once with messages that say
 * what to do; `router.verifyDPoP(req)` for a login route (the proof's key, `required`, nonces);
 * the router's access-token routes take DPoP-bound tokens only with a proof by their key.
 */
import express from 'express';
import request from 'supertest';
import {
  createRefreshRouter,
  errorHandler,
  type RefreshRouterOptions,
} from '../../src/adapters/express';
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
import { ACCESS_SECRET, REFRESH_SECRET } from '../support/secrets';
import { ath, makeProof, proofKey, type ProofKey } from '../support/dpop-proofs';

const ORIGIN = 'https://api.example.com';
const TOKEN_URL = `${ORIGIN}/auth/token`;
const NONCE_SECRET = 'a-nonce-secret-of-at-least-32-bytes!!';
const quiet = { error: () => undefined, warn: () => undefined };

function setup(dpop: Partial<NonNullable<RefreshRouterOptions['dpop']>> = {}) {
  const repository = new MemoryRefreshTokenRepository();
  const service = new RotationService({
    repository,
    versions: new MemoryVersionStore(),
    jobs: new InlineTokenJobs(repository),
    accessToken: { secret: ACCESS_SECRET },
    refreshToken: { secrets: [REFRESH_SECRET] },
  });
  const replayCache = new MemoryDPoPReplayCache();
  const auth = createRefreshRouter({
    service,
    logger: quiet,
    dpop: { tokenEndpointUrl: TOKEN_URL, replayCache, ...dpop },
  });
  const app = express();
  app.post('/auth/login', async (req, res, next) => {
    try {
      const proof = await auth.verifyDPoP(req);
      res.json({ jkt: proof?.jkt ?? null });
    } catch (error) {
      next(error);
    }
  });
  app.use('/auth', auth);
  app.use(errorHandler({ logger: quiet }));
  const signer = new JwtAccessTokens({
    ...resolveAccessTokenKeys({ secret: ACCESS_SECRET }),
    ttlMs: 900_000,
  });
  /** An access token of a real session, bound to `key` as the service's binding will sign it. */
  async function boundSession(key: ProofKey) {
    const { sessionId, userId } = await service.issue({ userId: 'alice' });
    const token = signer.sign({ userId, sessionId, version: 0, jkt: key.jkt }, new Date());
    return { sessionId, token };
  }
  return { app, auth, service, boundSession };
}

let es256: ProofKey;
let other: ProofKey;
beforeAll(async () => {
  [es256, other] = await Promise.all([proofKey('ES256'), proofKey('ES256')]);
});

describe('router.verifyDPoP(req) on a login route', () => {
  it('gives the proof’s key thumbprint, with htu the login URL on the token endpoint’s origin', async () => {
    const { app } = setup();
    const response = await request(app)
      .post('/auth/login')
      .set('DPoP', await makeProof(es256, `${ORIGIN}/auth/login`));
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ jkt: es256.jkt });
  });

  it('gives undefined without a proof, unless dpop.required', async () => {
    expect((await request(setup().app).post('/auth/login')).body).toEqual({ jkt: null });
    const response = await request(setup({ required: true }).app).post('/auth/login');
    expect(response.status).toBe(400);
    expect(response.body.error).toBe('invalid_dpop_proof');
    expect(response.body.error_description).toMatch(/proof is required/);
  });

  it('refuses a proof for the token endpoint’s URL at the login route (htu)', async () => {
    const { app } = setup();
    const response = await request(app)
      .post('/auth/login')
      .set('DPoP', await makeProof(es256, TOKEN_URL));
    expect(response.status).toBe(400);
    expect(response.body.error).toBe('invalid_dpop_proof');
  });

  it('with nonces: use_dpop_nonce and DPoP-Nonce first, then the retry passes', async () => {
    const { app } = setup({ nonce: { secret: NONCE_SECRET } });
    const first = await request(app)
      .post('/auth/login')
      .set('DPoP', await makeProof(es256, `${ORIGIN}/auth/login`));
    expect(first.status).toBe(400);
    expect(first.body.error).toBe('use_dpop_nonce');
    const nonce = first.headers['dpop-nonce'];
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const retry = await request(app)
      .post('/auth/login')
      .set('DPoP', await makeProof(es256, `${ORIGIN}/auth/login`, { claims: { nonce } }));
    expect(retry.status).toBe(200);
    expect(retry.headers['dpop-nonce']).toBe(nonce);
  });

  it('gives undefined, ignoring the header, when the router has no dpop option', async () => {
    const service = setup().service;
    const auth = createRefreshRouter({ service });
    const app = express().post('/login', async (req, res) => {
      res.json({ proof: (await auth.verifyDPoP(req)) ?? null });
    });
    const response = await request(app).post('/login').set('DPoP', 'anything');
    expect(response.body).toEqual({ proof: null });
    expect(auth.dpopAlgorithms).toBeUndefined();
  });
});

describe('the router’s access-token routes with DPoP', () => {
  it('log out a bound session with the DPoP scheme and a proof by its key', async () => {
    const { app, service, boundSession } = setup();
    const { token } = await boundSession(es256);
    const response = await request(app)
      .post('/auth/logout')
      .set('Authorization', `DPoP ${token}`)
      .set(
        'DPoP',
        await makeProof(es256, `${ORIGIN}/auth/logout`, { claims: { ath: ath(token) } }),
      );
    expect(response.status).toBe(204);
    expect(await service.listSessions('alice')).toEqual([]);
  });

  it('refuse to log out a bound session with its access token sent as Bearer, or a proof by another key', async () => {
    const { app, service, boundSession } = setup();
    const { token } = await boundSession(es256);
    const asBearer = await request(app)
      .post('/auth/logout')
      .set('Authorization', `Bearer ${token}`);
    expect(asBearer.status).toBe(401);
    expect(asBearer.headers['www-authenticate']).toMatch(/^DPoP error="invalid_token"/);
    const otherKey = await request(app)
      .post('/auth/logout')
      .set('Authorization', `DPoP ${token}`)
      .set(
        'DPoP',
        await makeProof(other, `${ORIGIN}/auth/logout`, { claims: { ath: ath(token) } }),
      );
    expect(otherKey.status).toBe(401);
    expect(otherKey.body.error).toBe('invalid_dpop_proof');
    expect(otherKey.headers['www-authenticate']).toMatch(/^DPoP error="invalid_dpop_proof"/);
    expect(await service.listSessions('alice')).toHaveLength(1);
  });

  it('list sessions for a bound token with a proof, and refuse it as Bearer', async () => {
    const { app, boundSession } = setup();
    const { token, sessionId } = await boundSession(es256);
    const listed = await request(app)
      .get('/auth/sessions')
      .set('Authorization', `DPoP ${token}`)
      .set(
        'DPoP',
        await makeProof(es256, `${ORIGIN}/auth/sessions`, {
          claims: { htm: 'GET', ath: ath(token) },
        }),
      );
    expect(listed.status).toBe(200);
    expect(listed.body.sessions.map((s: { id: string }) => s.id)).toEqual([sessionId]);
    const asBearer = await request(app)
      .get('/auth/sessions')
      .set('Authorization', `Bearer ${token}`);
    expect(asBearer.status).toBe(401);
  });

  it('expose the accepted algorithms for the metadata', () => {
    expect(setup({ algorithms: ['EdDSA', 'ES256'] }).auth.dpopAlgorithms).toEqual([
      'ES256',
      'EdDSA',
    ]);
  });
});

describe('createRefreshRouter({ dpop }) options', () => {
  const service = setup().service;
  const replayCache = new MemoryDPoPReplayCache();
  it.each([
    ['no tokenEndpointUrl', { replayCache }, /dpop.tokenEndpointUrl must be/],
    ['a relative tokenEndpointUrl', { replayCache, tokenEndpointUrl: '/auth/token' }, /absolute/],
    [
      'a tokenEndpointUrl with a query',
      { replayCache, tokenEndpointUrl: `${TOKEN_URL}?x=1` },
      /without query/,
    ],
    [
      'a plain-http tokenEndpointUrl off localhost',
      { replayCache, tokenEndpointUrl: 'http://api.example.com/auth/token' },
      /https/,
    ],
    [
      'no replayCache',
      { tokenEndpointUrl: TOKEN_URL },
      /replayCache is required: new MemoryDPoPReplayCache/,
    ],
    [
      'required that is not a boolean',
      { replayCache, tokenEndpointUrl: TOKEN_URL, required: 'yes' },
      /dpop.required/,
    ],
    [
      'HS256',
      { replayCache, tokenEndpointUrl: TOKEN_URL, algorithms: ['HS256'] },
      /never none or HS/,
    ],
  ])('refuses %s with an OptionsError that says what to do', (_label, dpop, message) => {
    const build = () => createRefreshRouter({ service, dpop: dpop as never });
    expect(build).toThrow(OptionsError);
    expect(build).toThrow(message);
  });

  it('accepts http on localhost, for development', () => {
    expect(() =>
      createRefreshRouter({
        service,
        dpop: { replayCache, tokenEndpointUrl: 'http://localhost:3000/auth/token' },
      }),
    ).not.toThrow();
  });
});
