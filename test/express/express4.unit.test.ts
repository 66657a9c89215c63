/**
 * The router, the guard and the login helper on Express 4 (the `express4` dev dependency is
 * express@4): async failures reach the error handler instead of hanging, bodies are parsed by the
 * router itself, and the contract is the same as on Express 5.
 */
jest.mock('express', () => jest.requireActual('express4'));

import express from 'express';
import request from 'supertest';
import { authenticate, createRefreshRouter } from '../../src/adapters/express';
import { MemoryRefreshTokenRepository, MemoryVersionStore } from '../../src/adapters/memory';
import type { RotateInput } from '../../src/domain/refresh-token';
import { RotationService } from '../../src/rotation-service';
import { ACCESS_SECRET, REFRESH_SECRET } from '../support/secrets';

class FailingRepository extends MemoryRefreshTokenRepository {
  down = false;

  override async findBySessionId(sessionId: string) {
    if (this.down) throw new Error('connection refused');
    return super.findBySessionId(sessionId);
  }

  override async rotate(input: RotateInput) {
    if (this.down) throw new Error('connection refused');
    return super.rotate(input);
  }
}

describe('on Express 4', () => {
  const repository = new FailingRepository();
  const service = new RotationService({
    repository,
    versions: new MemoryVersionStore(),
    accessToken: { secret: ACCESS_SECRET },
    refreshToken: { secrets: [REFRESH_SECRET] },
  });
  const quiet = { error: () => undefined, warn: () => undefined };
  const auth = createRefreshRouter({ service, cookie: true, logger: quiet });
  const app = express();
  app.use('/auth', auth);
  const accounts = express.Router();
  accounts.post('/login', (req, res, next) => {
    auth.issue(res, { userId: 'alice' }).then((body) => res.json(body), next);
  });
  app.use('/auth', accounts);
  app.get('/me', authenticate({ service }), (req, res) => void res.json({ id: req.auth!.userId }));

  it('is really Express 4', () => {
    expect(jest.requireActual<{ version: string }>('express4/package.json').version).toMatch(
      /^4\./,
    );
    // The router module imports 'express' too, so it gets the same Express 4.
    expect(express).toBe(jest.requireActual('express4'));
    expect(express).not.toBe(jest.requireActual('express'));
  });

  it('logs in, refreshes with a form and with JSON, answers /me and lists sessions', async () => {
    const login = await request(app).post('/auth/login');
    expect(login.status).toBe(200);
    const form = await request(app)
      .post('/auth/token')
      .type('form')
      .send({ grant_type: 'refresh_token', refresh_token: login.body.refresh_token });
    expect(form.status).toBe(200);
    expect(form.headers['cache-control']).toBe('no-store');
    const json = await request(app)
      .post('/auth/token')
      .send({ refresh_token: form.body.refresh_token });
    expect(json.status).toBe(200);
    const me = await request(app)
      .get('/me')
      .set('Authorization', `Bearer ${json.body.access_token}`);
    expect(me.body).toEqual({ id: 'alice' });
    const sessions = await request(app)
      .get('/auth/sessions')
      .set('Authorization', `Bearer ${json.body.access_token}`);
    expect(sessions.body.sessions).toHaveLength(1);
  });

  it('sets and clears the cookie with the same attributes', async () => {
    const login = await request(app).post('/auth/login').set('X-Token-Transport', 'cookie');
    const set = (login.headers['set-cookie'] as unknown as string[])[0]!;
    expect(set).toMatch(
      /^__Secure-refresh_token=rt_[\w-]+; Max-Age=2592000; Path=\/auth; Expires=.+; HttpOnly; Secure; SameSite=Strict$/,
    );
    const value = set.split(';')[0]!.split('=')[1]!;
    const out = await request(app)
      .post('/auth/logout')
      .set('Cookie', `__Secure-refresh_token=${value}`)
      .set('X-Refresh-CSRF', '1');
    expect(out.status).toBe(204);
    expect((out.headers['set-cookie'] as unknown as string[])[0]).toBe(
      '__Secure-refresh_token=; Path=/auth; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Strict',
    );
  });

  it('forwards async failures to the error table instead of hanging: 503 while the store is down', async () => {
    const login = await request(app).post('/auth/login');
    repository.down = true;
    try {
      const response = await request(app)
        .post('/auth/token')
        .send({ refresh_token: login.body.refresh_token })
        .timeout(5_000);
      expect(response.status).toBe(503);
      expect(response.headers['retry-after']).toBe('5');
      const logout = await request(app)
        .post('/auth/logout')
        .send({ refresh_token: login.body.refresh_token })
        .timeout(5_000);
      expect(logout.status).toBe(503);
    } finally {
      repository.down = false;
    }
  });

  it('gives 4xx for malformed, huge and mistyped bodies', async () => {
    const broken = await request(app)
      .post('/auth/token')
      .set('Content-Type', 'application/json')
      .send('{"refresh_token":');
    expect(broken.status).toBe(400);
    expect(broken.body.error).toBe('invalid_request');
    const huge = await request(app)
      .post('/auth/token')
      .send({ refresh_token: 'a'.repeat(50_000) });
    expect(huge.status).toBe(413);
    const text = await request(app)
      .post('/auth/token')
      .set('Content-Type', 'text/plain')
      .send('refresh_token=rt_x');
    expect(text.status).toBe(400);
    expect(text.body.error).toBe('invalid_request');
    const gzip = await request(app)
      .post('/auth/token')
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'gzip')
      .send('nope');
    expect(gzip.status).toBe(400);
  });
});
