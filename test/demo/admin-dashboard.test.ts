/**
 * Issue 16, item 2: the BullMQ dashboard of the example app (`/admin/queues`) is off by default,
 * and when `ADMIN_USER_IDS` is set it answers only an access token of a listed user whose session
 * is still live (`checkRevocation`). Two runtimes on one database and Redis: one without admins,
 * one with the admin created through the first.
 */
import request from 'supertest';
import type { Runtime } from '../../demo/runtime';
import { mongoUri, redisUrl } from '../support/services';
import { logIn, signUp, startApp, type TestApp } from '../support/app-harness';

describe('the queue dashboard at /admin/queues', () => {
  let harness: TestApp;
  let plain: Runtime;
  let guarded: Runtime;
  let admin: Awaited<ReturnType<typeof signUp>>;
  let user: Awaited<ReturnType<typeof signUp>>;

  beforeAll(async () => {
    harness = await startApp({ mongoUrl: mongoUri(), redisUrl: redisUrl(), worker: false });
    plain = harness.runtime;
    admin = await signUp(plain.app);
    user = await signUp(plain.app);
    guarded = await harness.anotherInstance({ adminUserIds: [admin.id] });
  });

  afterAll(async () => {
    await harness?.close();
  });

  const bearer = (token: string) => `Bearer ${token}`;

  it('is not mounted without ADMIN_USER_IDS, even for a valid token', async () => {
    const response = await request(plain.app)
      .get('/admin/queues')
      .set('Authorization', bearer(admin.tokens.access_token));
    expect(response.status).toBe(404);
  });

  it('answers 401 without a token and 403 to a user who is not an administrator', async () => {
    const anonymous = await request(guarded.app).get('/admin/queues');
    expect(anonymous.status).toBe(401);
    const api = await request(guarded.app).get('/admin/queues/api/queues');
    expect(api.status).toBe(401);
    const forbidden = await request(guarded.app)
      .get('/admin/queues/api/queues')
      .set('Authorization', bearer(user.tokens.access_token));
    expect(forbidden.status).toBe(403);
    expect(forbidden.body).toEqual({
      error: 'forbidden',
      error_description: 'administrators only',
    });
  });

  it('serves the dashboard and its queue API to an administrator', async () => {
    const page = await request(guarded.app)
      .get('/admin/queues')
      .set('Authorization', bearer(admin.tokens.access_token));
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    const api = await request(guarded.app)
      .get('/admin/queues/api/queues')
      .set('Authorization', bearer(admin.tokens.access_token));
    expect(api.status).toBe(200);
    const names = (api.body as { queues: Array<{ name: string }> }).queues.map((q) => q.name);
    expect(names.sort()).toEqual(['cleanup', 'revoke-all', 'touch']);
  });

  it("refuses an administrator's access token once the admin logged out everywhere", async () => {
    const second = { tokens: await logIn(guarded.app, admin.email) };
    const out = await request(guarded.app)
      .post('/auth/logout-all')
      .set('Authorization', bearer(second.tokens.access_token));
    expect(out.status).toBe(204);
    const after = await request(guarded.app)
      .get('/admin/queues/api/queues')
      .set('Authorization', bearer(second.tokens.access_token));
    expect(after.status).toBe(401);
  });
});
