/**
 * `issue()` with the cookie transport from a route outside the router's mount path and no
 * `cookie.path`: the app's mistake is reported (500, `invalid_options` in the log) before any
 * session exists, so no session is left that no client could ever use.
 */
import express from 'express';
import request from 'supertest';
import { createRefreshRouter, errorHandler } from '../../src/adapters/express';
import { MemoryRefreshTokenRepository, MemoryVersionStore } from '../../src/adapters/memory';
import { RotationService } from '../../src/rotation-service';

function appWith(cookie: true | { path: string }) {
  const repository = new MemoryRefreshTokenRepository();
  const service = new RotationService({
    repository,
    versions: new MemoryVersionStore(),
    accessToken: { secret: 'a'.repeat(32) },
    refreshToken: { secrets: ['b'.repeat(32)] },
  });
  const logged: unknown[] = [];
  const logger = { error: (entry: unknown) => logged.push(entry), warn: () => undefined };
  const auth = createRefreshRouter({ service, cookie, logger });
  const app = express();
  app.use('/auth', auth);
  app.post('/auth/login', async (_req, res) => {
    res.json(await auth.issue(res, { userId: 'user-1' }));
  });
  app.use(errorHandler({ logger }));
  return { app, repository, logged };
}

describe('issue() outside the router with the cookie transport', () => {
  it('without cookie.path answers 500 and creates no session', async () => {
    const { app, repository, logged } = appWith(true);
    const answer = await request(app).post('/auth/login').set('X-Token-Transport', 'cookie');
    expect(answer.status).toBe(500);
    expect(answer.headers['set-cookie']).toBeUndefined();
    expect(JSON.stringify(logged)).toContain('cookie.path is required');
    expect(await repository.listActiveForUser('user-1', new Date())).toHaveLength(0);
  });

  it('with cookie.path sets the cookie on that path and creates one session', async () => {
    const { app, repository } = appWith({ path: '/auth' });
    const answer = await request(app).post('/auth/login').set('X-Token-Transport', 'cookie');
    expect(answer.status).toBe(200);
    expect(String(answer.headers['set-cookie'])).toMatch(/Path=\/auth;/);
    expect(await repository.listActiveForUser('user-1', new Date())).toHaveLength(1);
  });
});
