/**
 * DPoP on the real Redis: `RedisDPoPReplayCache` keeps the `DPoPReplayCache` promises (first claim
 * wins, across clients too; keys expire; the caller's client is left open), and a proof replayed
 * to a second instance sharing the Redis is refused.
 */
import express from 'express';
import { Redis } from 'ioredis';
import request from 'supertest';
import { authenticate, createRefreshRouter } from '../../src/adapters/express';
import { JwtAccessTokens } from '../../src/adapters/jsonwebtoken/jwt-access-tokens';
import {
  InlineTokenJobs,
  MemoryRefreshTokenRepository,
  MemoryVersionStore,
} from '../../src/adapters/memory';
import { RedisDPoPReplayCache } from '../../src/adapters/redis';
import { resolveAccessTokenKeys } from '../../src/domain/access-token';
import { OptionsError, StoreUnavailableError } from '../../src/domain/errors';
import { RotationService } from '../../src/rotation-service';
import { ACCESS_SECRET, REFRESH_SECRET } from '../support/secrets';
import { ath, makeProof, proofKey } from '../support/dpop-proofs';
import { startFreezableProxy } from '../support/freezable-proxy';
import { openTestRedis, redisUrl, uniqueName } from '../support/services';

const ORIGIN = 'https://api.example.com';

describe('RedisDPoPReplayCache', () => {
  const connections: Redis[] = [];
  function client(): Redis {
    const connection = openTestRedis();
    connections.push(connection);
    return connection;
  }

  afterAll(() => {
    for (const connection of connections) connection.disconnect();
  });

  it('lets the first claim of a key win and refuses it on every client sharing the Redis', async () => {
    const prefix = `${uniqueName('rr_dpop')}:`;
    const a = new RedisDPoPReplayCache({ connection: client(), prefix });
    const b = new RedisDPoPReplayCache({ connection: client(), prefix });
    expect(await a.claim('k1', 60_000)).toBe(true);
    expect(await b.claim('k1', 60_000)).toBe(false);
    expect(await a.claim('k1', 60_000)).toBe(false);
    expect(await b.claim('k2', 60_000)).toBe(true);
  });

  it('lets exactly one of concurrent claims on two clients win', async () => {
    const prefix = `${uniqueName('rr_dpop')}:`;
    const caches = [client(), client()].map(
      (connection) => new RedisDPoPReplayCache({ connection, prefix }),
    );
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => caches[i % 2]!.claim('race', 60_000)),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('stores one prefixed key with the TTL, which then expires by itself', async () => {
    const connection = client();
    const prefix = `${uniqueName('rr_dpop')}:`;
    const cache = new RedisDPoPReplayCache({ connection, prefix });
    expect(await cache.claim('short', 150)).toBe(true);
    const ttl = await connection.pttl(`${prefix}short`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(150);
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await cache.claim('short', 150)).toBe(true);
  });

  it('rejects with StoreUnavailableError when Redis stalls, and leaves the client open and working', async () => {
    const proxy = await startFreezableProxy(Number(new URL(redisUrl()).port));
    const connection = new Redis({
      port: proxy.port,
      host: '127.0.0.1',
      maxRetriesPerRequest: null,
    });
    connections.push(connection);
    const cache = new RedisDPoPReplayCache({
      connection,
      prefix: `${uniqueName('rr_dpop')}:`,
      timeoutMs: 100,
    });
    try {
      expect(await cache.claim('before', 60_000)).toBe(true);
      proxy.freeze();
      await expect(cache.claim('stalled', 60_000)).rejects.toBeInstanceOf(StoreUnavailableError);
      proxy.thaw();
      expect(await connection.ping()).toBe('PONG');
      expect(connection.status).toBe('ready');
    } finally {
      connection.disconnect();
      await proxy.close();
    }
  });

  it('refuses a missing client and a bad timeout with OptionsError', () => {
    expect(() => new RedisDPoPReplayCache({ connection: {} as never })).toThrow(OptionsError);
    expect(() => new RedisDPoPReplayCache({ connection: client(), timeoutMs: 0 })).toThrow(
      OptionsError,
    );
  });
});

describe('a DPoP proof replayed to another instance sharing the Redis', () => {
  const connections: Redis[] = [];
  afterAll(() => {
    for (const connection of connections) connection.disconnect();
  });

  /** One app instance: its own service, guard and Redis client; the same Redis and key prefix. */
  function instance(prefix: string) {
    const connection = openTestRedis();
    connections.push(connection);
    const repository = new MemoryRefreshTokenRepository();
    const service = new RotationService({
      repository,
      versions: new MemoryVersionStore(),
      jobs: new InlineTokenJobs(repository),
      accessToken: { secret: ACCESS_SECRET },
      refreshToken: { secrets: [REFRESH_SECRET] },
    });
    const replayCache = new RedisDPoPReplayCache({ connection, prefix });
    return express().get(
      '/me',
      authenticate({ service, dpop: { publicOrigin: ORIGIN, replayCache } }),
      (req, res) => {
        res.json({ userId: req.auth!.userId });
      },
    );
  }

  it('is refused there: the first instance to claim its jti wins', async () => {
    const prefix = `${uniqueName('rr_dpop')}:`;
    const [a, b] = [instance(prefix), instance(prefix)];
    const key = await proofKey('ES256');
    const signer = new JwtAccessTokens({
      ...resolveAccessTokenKeys({ secret: ACCESS_SECRET }),
      ttlMs: 900_000,
    });
    const token = signer.sign(
      { userId: 'alice', sessionId: 's'.repeat(32), version: 0, jkt: key.jkt },
      new Date(),
    );
    const proof = await makeProof(key, `${ORIGIN}/me`, { claims: { htm: 'GET', ath: ath(token) } });
    const send = (app: express.Express) =>
      request(app).get('/me').set('Authorization', `DPoP ${token}`).set('DPoP', proof);
    expect((await send(a)).status).toBe(200);
    const replay = await send(b);
    expect(replay.status).toBe(401);
    expect(replay.body.error).toBe('invalid_dpop_proof');
    expect(replay.body.error_description).toMatch(/already used/);
    // A new proof by the same key passes on the second instance.
    const fresh = await makeProof(key, `${ORIGIN}/me`, { claims: { htm: 'GET', ath: ath(token) } });
    const ok = await request(b).get('/me').set('Authorization', `DPoP ${token}`).set('DPoP', fresh);
    expect(ok.status).toBe(200);
  });
});

describe('a token request proof replayed to another router instance sharing the Redis', () => {
  const connections: Redis[] = [];
  afterAll(() => {
    for (const connection of connections) connection.disconnect();
  });

  it('is refused there with 400 invalid_dpop_proof, and the service never sees it', async () => {
    const prefix = `${uniqueName('rr_dpop')}:`;
    const repository = new MemoryRefreshTokenRepository();
    const service = new RotationService({
      repository,
      versions: new MemoryVersionStore(),
      jobs: new InlineTokenJobs(repository),
      accessToken: { secret: ACCESS_SECRET },
      refreshToken: { secrets: [REFRESH_SECRET] },
    });
    // Two routers, each with its own Redis client, as two app instances behind one balancer.
    const [a, b] = [0, 1].map(() => {
      const connection = openTestRedis();
      connections.push(connection);
      const replayCache = new RedisDPoPReplayCache({ connection, prefix });
      const router = createRefreshRouter({
        service,
        dpop: { tokenEndpointUrl: `${ORIGIN}/auth/token`, replayCache },
      });
      return express().use('/auth', router);
    }) as [express.Express, express.Express];
    const { refreshToken } = await service.issue({ userId: 'alice' });
    const key = await proofKey('ES256');
    const proof = await makeProof(key, `${ORIGIN}/auth/token`);
    const first = await request(a)
      .post('/auth/token')
      .type('form')
      .send({ refresh_token: refreshToken })
      .set('DPoP', proof);
    expect(first.status).toBe(200);
    const refresh = jest.spyOn(service, 'refresh');
    const replay = await request(b)
      .post('/auth/token')
      .type('form')
      .send({ refresh_token: first.body.refresh_token })
      .set('DPoP', proof);
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe('invalid_dpop_proof');
    expect(replay.body.error_description).toMatch(/already used/);
    expect(refresh).not.toHaveBeenCalled();
  });
});
