/**
 * MongoDB goes away under the running example app: /auth/token (and login, /readyz) answer 503
 * temporarily_unavailable with Retry-After, quickly and never 500; when the server is back on the
 * same data, the same refresh token works again.
 */
import request from 'supertest';
import type { Runtime } from '../../demo/runtime';
import { startRestartable, type RestartableServer } from '../support/servers';
import { waitFor } from '../support/wait-for';
import { PASSWORD, signUp, startApp, type TestApp } from '../support/app-harness';

describe('the example app on MongoDB during an outage', () => {
  let mongo: RestartableServer;
  let harness: TestApp;
  let runtime: Runtime;

  beforeAll(async () => {
    mongo = await startRestartable('mongo');
    harness = await startApp({ mongoUrl: mongo.url, overrides: { revocationCacheTtlMs: 1_000 } });
    ({ runtime } = harness);
  });

  afterAll(async () => {
    await harness?.close();
    await mongo?.remove();
  });

  it('answers 503 with Retry-After while MongoDB is stopped, and recovers when it is back', async () => {
    const { app } = runtime;
    expect(runtime.mode).toBe('mongodb');
    const { email, tokens } = await signUp(app);
    const refreshed = await request(app)
      .post('/auth/token')
      .send({ refresh_token: tokens.refresh_token });
    expect(refreshed.status).toBe(200);
    const current = refreshed.body.refresh_token as string;

    await mongo.stop();
    const started = Date.now();
    const down = await request(app).post('/auth/token').send({ refresh_token: current });
    expect(down.status).toBe(503);
    expect(down.body).toEqual({
      error: 'temporarily_unavailable',
      error_description: expect.any(String),
    });
    expect(down.headers['retry-after']).toBe('5');
    expect(down.headers['cache-control']).toBe('no-store');
    expect(Date.now() - started).toBeLessThan(10_000);
    const login = await request(app).post('/auth/login').send({ email, password: PASSWORD });
    expect(login.status).toBe(503);
    expect((await request(app).get('/readyz')).status).toBe(503);
    const me = await request(app)
      .get('/me')
      .set('Authorization', `Bearer ${refreshed.body.access_token}`);
    expect(me.status).toBe(503);

    await mongo.restart();
    const back = await waitFor(
      () => request(app).post('/auth/token').send({ refresh_token: current }),
      {
        what: 'a refresh to get past 503 after the restart',
        until: (answer) => answer.status !== 503,
        timeoutMs: 30_000,
        intervalMs: 250,
      },
    );
    expect(back.status).toBe(200);
    expect(back.body.refresh_token).not.toBe(current);
    expect((await request(app).get('/readyz')).status).toBe(200);
    expect(
      (await request(app).post('/auth/login').send({ email, password: PASSWORD })).status,
    ).toBe(200);
  });
});
