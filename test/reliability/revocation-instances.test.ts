/**
 * Issue 14, finding 7: with several app instances, a revocation answered by one instance must be in
 * force on every other instance for any request that starts after the answer (0 ms window), not
 * after their one-second caches expire. Two example apps, each with its own MongoDB and Redis
 * connections (as two processes would have), on one MongoDB-wire server and one Redis; no worker
 * runs, so the revoke-all jobs stay queued (the "worker paused" case) and only the version bump and
 * its announcement on Redis pub/sub can refuse the old session. Each round warms instance B's
 * caches with the session, revokes it on A, and right after A's 204 asks B.
 */
import type { Express } from 'express';
import request from 'supertest';
import type { Runtime } from '../../demo/runtime';
import { mongoUri, redisUrl } from '../support/services';
import {
  logIn,
  PASSWORD,
  refreshForm,
  signUp,
  startApp,
  type TestApp,
  type TokenBody,
} from '../support/app-harness';

const ROUNDS = 99;
type Revocation = 'logout-all' | 'password-change' | 'logout';
const KINDS: Revocation[] = ['logout-all', 'password-change', 'logout'];

describe('a revocation on one instance is in force on another as soon as it is answered', () => {
  let harness: TestApp;
  let a: Runtime;
  let b: Runtime;

  beforeAll(async () => {
    // The default one-second version and session caches: what production runs.
    harness = await startApp({
      mongoUrl: mongoUri(),
      redisUrl: redisUrl(),
      worker: false,
      overrides: { revocationCacheTtlMs: 1_000 },
    });
    a = harness.runtime;
    b = await harness.anotherInstance();
  });

  afterAll(async () => {
    await harness?.close();
  });

  async function revoke(app: Express, kind: Revocation, tokens: TokenBody, password: string) {
    const bearer = `Bearer ${tokens.access_token}`;
    switch (kind) {
      case 'logout-all':
        return request(app).post('/auth/logout-all').set('Authorization', bearer);
      case 'password-change':
        return request(app)
          .post('/auth/password')
          .set('Authorization', bearer)
          .send({ currentPassword: password, newPassword: `${password}!` });
      case 'logout':
        return request(app).post('/auth/logout').send({ refresh_token: tokens.refresh_token });
    }
  }

  it(`${ROUNDS} rounds of logout-all, password change and logout on A: B refuses the old access and refresh tokens every time`, async () => {
    const { email } = await signUp(a.app);
    let password = PASSWORD;
    const accepted = { access: 0, refresh: 0 };
    const refused = { access: 0, refresh: 0 };
    const byKind: Record<Revocation, number> = { 'logout-all': 0, 'password-change': 0, logout: 0 };
    for (let round = 0; round < ROUNDS; round += 1) {
      const kind = KINDS[round % KINDS.length]!;
      const tokens = await logIn(a.app, email, password);
      const bearer = `Bearer ${tokens.access_token}`;
      // B has the session's versions and state in its caches.
      const warm = await request(b.app).get('/auth/sessions').set('Authorization', bearer);
      expect(warm.status).toBe(200);

      const revoked = await revoke(a.app, kind, tokens, password);
      expect(revoked.status).toBe(204);
      if (kind === 'password-change') password = `${password}!`;
      byKind[kind] += 1;

      // Started after A's 204, on the other instance.
      const access = await request(b.app).get('/auth/sessions').set('Authorization', bearer);
      const refresh = await refreshForm(b.app, tokens.refresh_token!);
      if (access.status === 401) refused.access += 1;
      else accepted.access += 1;
      if (refresh.status === 400) refused.refresh += 1;
      else accepted.refresh += 1;
    }
    expect({ accepted, refused, byKind }).toEqual({
      accepted: { access: 0, refresh: 0 },
      refused: { access: ROUNDS, refresh: ROUNDS },
      byKind: { 'logout-all': 33, 'password-change': 33, logout: 33 },
    });
    expect([a.service.unpublishedNotices, b.service.unpublishedNotices]).toEqual([0, 0]);
  });

  it('a breach rotation on A is in force on B at once for access tokens that check revocation', async () => {
    const { email } = await signUp(b.app);
    const tokens = await logIn(b.app, email);
    const bearer = `Bearer ${tokens.access_token}`;
    expect((await request(b.app).get('/auth/sessions').set('Authorization', bearer)).status).toBe(
      200,
    );
    await a.service.rotateGlobal({ reason: 'test breach' });
    expect((await request(b.app).get('/auth/sessions').set('Authorization', bearer)).status).toBe(
      401,
    );
    expect((await refreshForm(b.app, tokens.refresh_token!)).status).toBe(400);
    // A login after the rotation is at the new global version on both instances.
    const fresh = await logIn(b.app, email);
    expect(
      (
        await request(a.app)
          .get('/auth/sessions')
          .set('Authorization', `Bearer ${fresh.access_token}`)
      ).status,
    ).toBe(200);
  });
});
