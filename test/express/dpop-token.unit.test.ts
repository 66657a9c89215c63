/**
 * `POST /token` and `router.issue` with DPoP (RFC 9449 §5), on a bare `express()` and the memory
 * adapters: the router verifies the one `DPoP` header against `dpop.tokenEndpointUrl`, hands
 * `{ jkt }` to the service (`refresh(token, proof)`, `issue({ dpop })`), and answers the service's
 * `token_type`. A bound session refreshes only with a proof by its key; a refused proof changes
 * nothing. Every answer carries `DPoP-Nonce` when nonces are on.
 */
import express from 'express';
import request from 'supertest';
import {
  createRefreshRouter,
  errorHandler,
  type RefreshRouterOptions,
} from '../../src/adapters/express';
import {
  InlineTokenJobs,
  MemoryDPoPReplayCache,
  MemoryRefreshTokenRepository,
  MemoryVersionStore,
} from '../../src/adapters/memory';
import { RotationService } from '../../src/rotation-service';
import { ACCESS_SECRET, REFRESH_SECRET } from '../support/secrets';
import { makeProof, proofKey, type ProofKey } from '../support/dpop-proofs';

const ORIGIN = 'https://api.example.com';
const TOKEN_URL = `${ORIGIN}/auth/token`;
const LOGIN_URL = `${ORIGIN}/auth/login`;
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
  const refresh = jest.spyOn(service, 'refresh');
  const auth = createRefreshRouter({
    service,
    logger: quiet,
    dpop: { tokenEndpointUrl: TOKEN_URL, replayCache: new MemoryDPoPReplayCache(), ...dpop },
  });
  const app = express();
  app.post('/auth/login', async (req, res, next) => {
    try {
      const proof = await auth.verifyDPoP(req);
      res.json(await auth.issue(res, { userId: 'alice', dpop: proof }));
    } catch (error) {
      next(error);
    }
  });
  app.use('/auth', auth);
  app.use(errorHandler({ logger: quiet }));
  const login = async (key?: ProofKey) => {
    const call = request(app).post('/auth/login');
    const response = key ? await call.set('DPoP', await makeProof(key, LOGIN_URL)) : await call;
    expect(response.status).toBe(200);
    return response.body as { refresh_token: string; token_type: string; access_token: string };
  };
  const refreshWith = async (token: string, proof?: string) => {
    const call = request(app)
      .post('/auth/token')
      .type('form')
      .send({ grant_type: 'refresh_token', refresh_token: token });
    return proof === undefined ? call : call.set('DPoP', proof);
  };
  return { app, service, refresh, login, refreshWith };
}

function claimsOf(accessToken: string): { cnf?: { jkt: string } } {
  return JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString()) as {
    cnf?: { jkt: string };
  };
}

let es256: ProofKey;
let eddsa: ProofKey;
let thief: ProofKey;
beforeAll(async () => {
  [es256, eddsa, thief] = await Promise.all([
    proofKey('ES256'),
    proofKey('EdDSA'),
    proofKey('ES256'),
  ]);
});

describe('POST /token with DPoP', () => {
  it.each([
    ['ES256', () => es256],
    ['EdDSA', () => eddsa],
  ])(
    'with a valid %s proof hands { jkt } to the service and answers token_type DPoP with a bound access token',
    async (_alg, key) => {
      const { login, refreshWith, refresh } = setup();
      const { refresh_token } = await login();
      const response = await refreshWith(refresh_token, await makeProof(key(), TOKEN_URL));
      expect(refresh).toHaveBeenCalledWith(
        refresh_token,
        { jkt: key().jkt },
        { transport: 'body' },
      );
      expect(response.status).toBe(200);
      expect(response.body.token_type).toBe('DPoP');
      expect(claimsOf(response.body.access_token).cnf).toEqual({ jkt: key().jkt });
    },
  );

  it('without a proof hands no proof to the service and stays a bearer session', async () => {
    const { login, refreshWith, refresh } = setup();
    const { refresh_token } = await login();
    const response = await refreshWith(refresh_token);
    expect(response.status).toBe(200);
    expect(refresh).toHaveBeenCalledWith(refresh_token, undefined, { transport: 'body' });
    expect(response.body.token_type).toBe('Bearer');
    expect(claimsOf(response.body.access_token).cnf).toBeUndefined();
  });

  it('a bound session refreshes only with a proof by its key; a refusal leaves the session alive', async () => {
    const { login, refreshWith, service } = setup();
    const bound = await login(es256);
    expect(bound.token_type).toBe('DPoP');
    const noProof = await refreshWith(bound.refresh_token);
    expect(noProof.status).toBe(400);
    expect(noProof.body.error).toBe('invalid_dpop_proof');
    const thiefs = await refreshWith(bound.refresh_token, await makeProof(thief, TOKEN_URL));
    expect(thiefs.status).toBe(400);
    expect(thiefs.body.error).toBe('invalid_dpop_proof');
    expect(await service.listSessions('alice')).toHaveLength(1);
    const owner = await refreshWith(bound.refresh_token, await makeProof(es256, TOKEN_URL));
    expect(owner.status).toBe(200);
    expect(owner.body.token_type).toBe('DPoP');
  });

  it('refuses an invalid proof with 400 invalid_dpop_proof before the service sees the token', async () => {
    const { login, refreshWith, refresh } = setup();
    const { refresh_token } = await login();
    for (const proof of [
      await makeProof(es256, `${ORIGIN}/auth/other`),
      await makeProof(es256, TOKEN_URL, { claims: { htm: 'GET' } }),
      await makeProof(es256, TOKEN_URL, { now: Math.floor(Date.now() / 1000) - 3_600 }),
      'junk',
    ]) {
      const response = await refreshWith(refresh_token, proof);
      expect(response.status).toBe(400);
      expect(response.body.error).toBe('invalid_dpop_proof');
    }
    expect(refresh).not.toHaveBeenCalled();
    // The token is intact: it still refreshes.
    expect((await refreshWith(refresh_token)).status).toBe(200);
  });

  it('refuses a replayed proof', async () => {
    const { login, refreshWith } = setup();
    const first = await login();
    const proof = await makeProof(es256, TOKEN_URL);
    const used = await refreshWith(first.refresh_token, proof);
    expect(used.status).toBe(200);
    const replay = await refreshWith(used.body.refresh_token, proof);
    expect(replay.status).toBe(400);
    expect(replay.body.error_description).toMatch(/already used/);
  });

  it('with dpop.required refuses a token request without a proof', async () => {
    const { app, refreshWith, service } = setup({ required: true });
    const { refreshToken } = await service.issue({ userId: 'alice' });
    const response = await refreshWith(refreshToken);
    expect(response.status).toBe(400);
    expect(response.body.error).toBe('invalid_dpop_proof');
    expect((await request(app).post('/auth/login')).body.error).toBe('invalid_dpop_proof');
  });

  it('with nonces: use_dpop_nonce and DPoP-Nonce, then the retry passes; every answer carries a nonce', async () => {
    const { login, refreshWith } = setup({ nonce: { secret: NONCE_SECRET } });
    const { refresh_token } = await login();
    const first = await refreshWith(refresh_token, await makeProof(es256, TOKEN_URL));
    expect(first.status).toBe(400);
    expect(first.body.error).toBe('use_dpop_nonce');
    const nonce = first.headers['dpop-nonce'];
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const retry = await refreshWith(
      refresh_token,
      await makeProof(es256, TOKEN_URL, { claims: { nonce } }),
    );
    expect(retry.status).toBe(200);
    expect(retry.headers['dpop-nonce']).toBe(nonce);
    const badBody = await refreshWith('');
    expect(badBody.headers['dpop-nonce']).toBe(nonce);
  });
});

describe('logout and RFC 7009 revocation of a bound session', () => {
  const LOGOUT_URL = `${ORIGIN}/auth/logout`;
  const REVOKE_URL = `${ORIGIN}/auth/revoke`;

  async function post(app: express.Express, path: string, body: object, proof?: string) {
    const call = request(app).post(path).type('form').send(body);
    return proof === undefined ? call : call.set('DPoP', proof);
  }

  it('logout by refresh token needs a proof by its key: without one, or by another key, 400 and the session lives', async () => {
    const { app, login, service } = setup();
    const bound = await login(es256);
    const body = { refresh_token: bound.refresh_token };
    const bare = await post(app, '/auth/logout', body);
    expect(bare.status).toBe(400);
    expect(bare.body.error).toBe('invalid_dpop_proof');
    const thiefs = await post(app, '/auth/logout', body, await makeProof(thief, LOGOUT_URL));
    expect(thiefs.status).toBe(400);
    expect(await service.listSessions('alice')).toHaveLength(1);
    const owner = await post(app, '/auth/logout', body, await makeProof(es256, LOGOUT_URL));
    expect(owner.status).toBe(204);
    expect(await service.listSessions('alice')).toHaveLength(0);
  });

  it('a proof for another route (htu) does not count', async () => {
    const { app, login, service } = setup();
    const bound = await login(es256);
    const elsewhere = await post(
      app,
      '/auth/logout',
      { refresh_token: bound.refresh_token },
      await makeProof(es256, TOKEN_URL),
    );
    expect(elsewhere.status).toBe(400);
    expect(await service.listSessions('alice')).toHaveLength(1);
  });

  it('/revoke with a bound refresh or access token needs a proof by its key; a bearer session needs none', async () => {
    const { app, login, service } = setup();
    const bound = await login(es256);
    for (const token of [bound.refresh_token, bound.access_token]) {
      const bare = await post(app, '/auth/revoke', { token });
      expect(bare.status).toBe(400);
      expect(bare.body.error).toBe('invalid_dpop_proof');
      const thiefs = await post(app, '/auth/revoke', { token }, await makeProof(thief, REVOKE_URL));
      expect(thiefs.status).toBe(400);
      expect(await service.listSessions('alice')).toHaveLength(1);
    }
    const owner = await post(
      app,
      '/auth/revoke',
      { token: bound.access_token },
      await makeProof(es256, REVOKE_URL),
    );
    expect(owner.status).toBe(200);
    expect(await service.listSessions('alice')).toHaveLength(0);

    const bearer = await login();
    expect((await post(app, '/auth/revoke', { token: bearer.refresh_token })).status).toBe(200);
    expect(await service.listSessions('alice')).toHaveLength(0);
  });
});
