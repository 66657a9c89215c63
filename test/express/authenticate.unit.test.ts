/**
 * `authenticate()`: bearer tokens only, pinned algorithm, iss/aud, typed req.auth, 401 with the
 * RFC 6750 challenge, and the checkRevocation / trackActivity options.
 */
import { createSecretKey } from 'node:crypto';
import express, { type RequestHandler } from 'express';
import jwt from 'jsonwebtoken';
import request from 'supertest';
import { authenticate, type AuthContext } from '../../src/adapters/express';
import {
  InlineTokenJobs,
  MemoryRefreshTokenRepository,
  MemoryVersionStore,
} from '../../src/adapters/memory';
import type { TokenJobs } from '../../src/domain/token-jobs';
import type { VersionStore } from '../../src/domain/version-store';
import { RotationService } from '../../src/rotation-service';
import { ShiftedClock } from '../support/fake-clock';
import { ACCESS_SECRET, REFRESH_SECRET } from '../support/secrets';

const quiet = { error: () => undefined, warn: () => undefined };
const INVALID_TOKEN_CHALLENGE = 'Bearer error="invalid_token"';

class SwitchableVersions extends MemoryVersionStore {
  down = false;

  override async getUserMinVersion(userId: string): Promise<number> {
    if (this.down) throw new Error('connection refused');
    return super.getUserMinVersion(userId);
  }
}

function setup(
  options: {
    issuer?: string;
    audience?: string;
    jobs?: (repository: MemoryRefreshTokenRepository) => TokenJobs;
  } = {},
) {
  const repository = new MemoryRefreshTokenRepository();
  const versions = new SwitchableVersions();
  const clock = new ShiftedClock();
  const service = new RotationService({
    repository,
    versions: versions as VersionStore,
    jobs: options.jobs ? options.jobs(repository) : new InlineTokenJobs(repository),
    clock,
    accessToken: {
      secret: ACCESS_SECRET,
      ...(options.issuer ? { issuer: options.issuer } : {}),
      ...(options.audience ? { audience: options.audience } : {}),
    },
    refreshToken: { secrets: [REFRESH_SECRET] },
  });
  const seen: AuthContext[] = [];
  const record: RequestHandler = (req, res) => {
    seen.push(req.auth!);
    res.json({ userId: req.auth!.userId });
  };
  const app = express()
    .get('/plain', authenticate({ service }), record)
    .get('/strict', authenticate({ service, checkRevocation: true, logger: quiet }), record)
    .get('/tracked', authenticate({ service, trackActivity: true }), record);
  return { app, service, repository, versions, clock, seen };
}

describe('authenticate()', () => {
  it('sets a typed req.auth from a valid bearer token', async () => {
    const { app, service, seen } = setup();
    const { accessToken, sessionId } = await service.issue({ userId: 'alice' });
    const response = await request(app).get('/plain').set('Authorization', `Bearer ${accessToken}`);
    expect(response.status).toBe(200);
    expect(seen[0]).toEqual({
      userId: 'alice',
      sessionId,
      tokenVersion: 0,
      claims: expect.objectContaining({
        sub: 'alice',
        sid: sessionId,
        ver: 0,
        jti: expect.any(String),
      }),
    });
    // The scheme is case-insensitive (RFC 7235).
    expect(
      (await request(app).get('/plain').set('Authorization', `bearer ${accessToken}`)).status,
    ).toBe(200);
  });

  it('answers a request without credentials with 401 and a bare Bearer challenge', async () => {
    const { app } = setup();
    const response = await request(app).get('/plain');
    expect(response.status).toBe(401);
    expect(response.headers['www-authenticate']).toBe('Bearer');
    expect(response.body).toEqual({
      error: 'invalid_token',
      error_description: expect.any(String),
    });
    expect(response.headers['cache-control']).toBe('no-store');
  });

  it('refuses other schemes, garbage, forged, expired, unpinned-algorithm and none-algorithm tokens with 401 invalid_token', async () => {
    const { app, service, clock } = setup();
    const { accessToken } = await service.issue({ userId: 'alice' });
    const claims = service.verifyAccessToken(accessToken);
    const { iat: _iat, exp: _exp, ...payload } = claims;
    const key = createSecretKey(Buffer.from(ACCESS_SECRET));
    const otherKey = createSecretKey(Buffer.from('another-secret-of-at-least-32-bytes-long!!'));
    const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;
    const headers = [
      `Basic ${Buffer.from('alice:pw').toString('base64')}`,
      'Bearer',
      'Bearer ',
      `Bearer ${accessToken} extra`,
      'Bearer not.a.jwt',
      `Bearer ${accessToken.slice(0, -3)}abc`,
      `Bearer ${jwt.sign(payload, otherKey, { algorithm: 'HS256', expiresIn: 60 })}`,
      `Bearer ${jwt.sign(payload, key, { algorithm: 'HS512', expiresIn: 60 })}`,
      `Bearer ${unsigned}`,
    ];
    for (const header of headers) {
      const response = await request(app).get('/plain').set('Authorization', header);
      expect({
        header: header.slice(0, 30),
        status: response.status,
        challenge: response.headers['www-authenticate'],
      }).toEqual({
        header: header.slice(0, 30),
        status: 401,
        challenge: INVALID_TOKEN_CHALLENGE,
      });
      expect(response.body.error).toBe('invalid_token');
    }
    clock.advance(16 * 60_000); // past the 15-minute access-token lifetime
    const expired = await request(app).get('/plain').set('Authorization', `Bearer ${accessToken}`);
    expect(expired.status).toBe(401);
    expect(expired.headers['www-authenticate']).toBe(INVALID_TOKEN_CHALLENGE);
  });

  it('checks iss and aud when the service is configured with them', async () => {
    const strict = setup({ issuer: 'https://auth.example.com', audience: 'api' });
    const loose = setup();
    const good = (await strict.service.issue({ userId: 'alice' })).accessToken;
    const foreign = (await loose.service.issue({ userId: 'alice' })).accessToken; // same key, no iss/aud
    expect(
      (await request(strict.app).get('/plain').set('Authorization', `Bearer ${good}`)).status,
    ).toBe(200);
    expect(
      (await request(strict.app).get('/plain').set('Authorization', `Bearer ${foreign}`)).status,
    ).toBe(401);
  });

  it('with checkRevocation refuses a token revoked by revokeAllForUser, which the plain guard still accepts until it expires', async () => {
    const { app, service } = setup();
    const { accessToken } = await service.issue({ userId: 'alice' });
    const bearer = `Bearer ${accessToken}`;
    expect((await request(app).get('/strict').set('Authorization', bearer)).status).toBe(200);
    await service.revokeAllForUser('alice', 'password_changed');
    const strict = await request(app).get('/strict').set('Authorization', bearer);
    expect(strict.status).toBe(401);
    expect(strict.headers['www-authenticate']).toBe(INVALID_TOKEN_CHALLENGE);
    expect((await request(app).get('/plain').set('Authorization', bearer)).status).toBe(200);
    const fresh = (await service.issue({ userId: 'alice' })).accessToken;
    expect((await request(app).get('/strict').set('Authorization', `Bearer ${fresh}`)).status).toBe(
      200,
    );
  });

  it('with checkRevocation refuses a token issued before a breach rotation (global minimum), except one version behind inside the grace window', async () => {
    const { app, service, clock } = setup();
    const status = async (path: string, token: string) =>
      (await request(app).get(path).set('Authorization', `Bearer ${token}`)).status;
    const old = (await service.issue({ userId: 'alice' })).accessToken;
    expect(await status('/strict', old)).toBe(200);

    await service.rotateGlobal({ reason: 'signing key leaked' });
    expect(await status('/strict', old)).toBe(401);
    expect(await status('/plain', old)).toBe(200);
    const current = (await service.issue({ userId: 'alice' })).accessToken;
    expect(await status('/strict', current)).toBe(200);

    await service.rotateGlobal({ reason: 'second breach', gracePeriod: '1m' });
    expect(await status('/strict', current)).toBe(200);
    expect(await status('/strict', old)).toBe(401);
    clock.advance(61_000);
    expect(await status('/strict', current)).toBe(401);
  });

  it('checkRevocation { sessions: true } refuses a token whose session was revoked; true alone does not look at the session', async () => {
    const { service } = setup();
    const app = express()
      .get('/versions', authenticate({ service, checkRevocation: true, logger: quiet }), (_q, r) =>
        r.end(),
      )
      .get(
        '/sessions',
        authenticate({ service, checkRevocation: { sessions: true }, logger: quiet }),
        (_q, r) => r.end(),
      );
    const { accessToken, sessionId } = await service.issue({ userId: 'alice' });
    const bearer = `Bearer ${accessToken}`;
    expect((await request(app).get('/sessions').set('Authorization', bearer)).status).toBe(200);
    expect(await service.revokeSession(sessionId)).toBe(true);
    const refused = await request(app).get('/sessions').set('Authorization', bearer);
    expect(refused.status).toBe(401);
    expect(refused.headers['www-authenticate']).toBe(INVALID_TOKEN_CHALLENGE);
    expect((await request(app).get('/versions').set('Authorization', bearer)).status).toBe(200);
  });

  it('refuses an invalid checkRevocation option at construction with an OptionsError', () => {
    const { service } = setup();
    for (const checkRevocation of ['yes', { sessions: 'yes' }, null, 1]) {
      expect(() =>
        authenticate({ service, checkRevocation: checkRevocation as unknown as boolean }),
      ).toThrow(/checkRevocation must be true, false or \{ sessions: boolean \}/);
    }
  });

  it('with checkRevocation answers 503 with Retry-After while the version store is down', async () => {
    const { app, service, versions } = setup();
    const { accessToken } = await service.issue({ userId: 'alice' });
    versions.down = true;
    const response = await request(app)
      .get('/strict')
      .set('Authorization', `Bearer ${accessToken}`);
    expect(response.status).toBe(503);
    expect(response.body.error).toBe('temporarily_unavailable');
    expect(response.headers['retry-after']).toBe('5');
  });

  it('with trackActivity records the session’s last use, and never fails the request when the job cannot be taken', async () => {
    const { app, service, repository } = setup();
    const { accessToken, sessionId } = await service.issue({ userId: 'alice' });
    expect((await repository.findBySessionId(sessionId))?.lastUsedAt).toBeNull();
    expect(
      (await request(app).get('/tracked').set('Authorization', `Bearer ${accessToken}`)).status,
    ).toBe(200);
    await new Promise((resolve) => setImmediate(resolve));
    expect((await repository.findBySessionId(sessionId))?.lastUsedAt).toBeInstanceOf(Date);

    const failing = setup({
      jobs: (repo) => ({
        revokeAll: (job) => new InlineTokenJobs(repo).revokeAll(job),
        touch: async () => {
          throw new Error('queue down');
        },
      }),
    });
    const issued = await failing.service.issue({ userId: 'bob' });
    const response = await request(failing.app)
      .get('/tracked')
      .set('Authorization', `Bearer ${issued.accessToken}`);
    expect(response.status).toBe(200);
    await new Promise((resolve) => setImmediate(resolve));
    expect(failing.service.droppedTouches).toBe(1);
  });
});
