/**
 * The whole user journey through the example app (docs/express.md, "The example app"), once on the
 * in-memory adapters with inline jobs and once on the real MongoDB-wire server with BullMQ on the
 * real Redis and a real worker consuming the jobs.
 */
import request from 'supertest';
import { waitFor } from '../support/wait-for';
import {
  logIn,
  PASSWORD,
  refreshForm,
  refreshJson,
  signUp,
  bothStores,
  startApp,
  useApp,
} from '../support/app-harness';

const INVALID_GRANT = {
  error: 'invalid_grant',
  error_description: 'The refresh token is invalid, expired or revoked.',
};

describe.each(bothStores())('the example app on %s', (_name, start, mode) => {
  const backend = useApp(() => start());

  it('registers, logs in, answers /me, refuses a wrong password, and answers a duplicate email like a new one without touching the account', async () => {
    const { app } = backend;
    const { id, email, tokens } = await signUp(app);
    expect(tokens).toEqual({
      access_token: expect.any(String),
      token_type: 'Bearer',
      expires_in: 900,
      refresh_token: expect.stringMatching(/^rt_[A-Za-z0-9_-]+$/),
    });

    const me = await request(app).get('/me').set('Authorization', `Bearer ${tokens.access_token}`);
    expect(me.status).toBe(200);
    expect(me.body).toEqual({ id, email });

    const wrong = await request(app)
      .post('/auth/login')
      .send({ email, password: 'not the password' });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toEqual({ error: 'invalid_credentials' });
    const unknown = await request(app)
      .post('/auth/login')
      .send({ email: `x${email}`, password: PASSWORD });
    expect(unknown.status).toBe(401);
    expect(unknown.body).toEqual({ error: 'invalid_credentials' });

    const again = await request(app)
      .post('/auth/register')
      .send({ email: email.toUpperCase(), password: 'another password entirely' });
    expect(again.status).toBe(202);
    expect(
      (await request(app).post('/auth/login').send({ email, password: PASSWORD })).status,
    ).toBe(200);
    const hijack = await request(app)
      .post('/auth/login')
      .send({ email, password: 'another password entirely' });
    expect(hijack.status).toBe(401);
    expect((await request(app).get('/me')).status).toBe(401);
  });

  it('rotates on refresh; the old token inside the grace window gets the identical new token; outside it, the session is revoked', async () => {
    const { app, clock } = backend;
    const { tokens } = await signUp(app);
    const first = await refreshForm(app, tokens.refresh_token!);
    expect(first.status).toBe(200);
    expect(first.headers['cache-control']).toBe('no-store');
    expect(first.body.refresh_token).not.toBe(tokens.refresh_token);

    const retried = await refreshJson(app, tokens.refresh_token!);
    expect(retried.status).toBe(200);
    expect(retried.body.refresh_token).toBe(first.body.refresh_token);

    const me = await request(app)
      .get('/me')
      .set('Authorization', `Bearer ${first.body.access_token}`);
    expect(me.status).toBe(200);

    clock.advance(11_000); // past the 10 s reuse grace
    const replayed = await refreshForm(app, tokens.refresh_token!);
    expect(replayed.status).toBe(400);
    expect(replayed.body).toEqual(INVALID_GRANT);
    // Reuse revoked the whole session: the legitimate newest token is dead too.
    const newest = await refreshForm(app, first.body.refresh_token);
    expect(newest.status).toBe(400);
    expect(newest.body).toEqual(INVALID_GRANT);
  });

  it('logs out by refresh token or access token, idempotently', async () => {
    const { app } = backend;
    const { email, tokens } = await signUp(app);
    const out = await request(app)
      .post('/auth/logout')
      .send({ refresh_token: tokens.refresh_token });
    expect(out.status).toBe(204);
    expect((await refreshForm(app, tokens.refresh_token!)).body).toEqual(INVALID_GRANT);
    expect(
      (await request(app).post('/auth/logout').send({ refresh_token: tokens.refresh_token }))
        .status,
    ).toBe(204);

    const second = await logIn(app, email);
    const byAccess = await request(app)
      .post('/auth/logout')
      .set('Authorization', `Bearer ${second.access_token}`);
    expect(byAccess.status).toBe(204);
    expect((await refreshForm(app, second.refresh_token!)).body).toEqual(INVALID_GRANT);
  });

  it('lists the live sessions with the current one marked, and deletes only the caller’s own', async () => {
    const { app } = backend;
    const alice = await signUp(app);
    const laptop = alice.tokens;
    const phone = await logIn(app, alice.email);
    const bob = await signUp(app);

    const listed = await request(app)
      .get('/auth/sessions')
      .set('Authorization', `Bearer ${phone.access_token}`);
    expect(listed.status).toBe(200);
    expect(listed.headers['cache-control']).toBe('no-store');
    expect(listed.body.sessions).toHaveLength(2);
    const current = listed.body.sessions.filter((s: { current: boolean }) => s.current);
    expect(current).toHaveLength(1);
    expect(listed.body.sessions[0]).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{32}$/),
      created_at: expect.any(String),
      last_used_at: null,
      expires_at: expect.any(String),
      absolute_expires_at: expect.any(String),
      client: expect.objectContaining({ ip: expect.any(String) }),
      current: expect.any(Boolean),
    });
    const laptopId = listed.body.sessions.find((s: { current: boolean }) => !s.current)
      .id as string;

    const bobsTry = await request(app)
      .delete(`/auth/sessions/${laptopId}`)
      .set('Authorization', `Bearer ${bob.tokens.access_token}`);
    expect(bobsTry.status).toBe(404);
    expect((await refreshForm(app, laptop.refresh_token!)).status).toBe(200);

    const deleted = await request(app)
      .delete(`/auth/sessions/${laptopId}`)
      .set('Authorization', `Bearer ${phone.access_token}`);
    expect(deleted.status).toBe(204);
    const again = await request(app)
      .delete(`/auth/sessions/${laptopId}`)
      .set('Authorization', `Bearer ${phone.access_token}`);
    expect(again.status).toBe(404);
    const unknown = await request(app)
      .delete(`/auth/sessions/${'0'.repeat(32)}`)
      .set('Authorization', `Bearer ${phone.access_token}`);
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ error: 'not_found', error_description: 'No such session.' });

    const after = await request(app)
      .get('/auth/sessions')
      .set('Authorization', `Bearer ${phone.access_token}`);
    expect(after.body.sessions.map((s: { id: string }) => s.id)).not.toContain(laptopId);
    expect(after.body.sessions).toHaveLength(1);
    expect((await refreshForm(app, phone.refresh_token!)).status).toBe(200);
  });

  it('logout-all revokes every session of the user and no one else’s', async () => {
    const { app } = backend;
    const alice = await signUp(app);
    const tablet = await logIn(app, alice.email);
    const bob = await signUp(app);
    const all = await request(app)
      .post('/auth/logout-all')
      .set('Authorization', `Bearer ${tablet.access_token}`);
    expect(all.status).toBe(204);
    expect((await refreshForm(app, alice.tokens.refresh_token!)).body).toEqual(INVALID_GRANT);
    expect((await refreshForm(app, tablet.refresh_token!)).body).toEqual(INVALID_GRANT);
    expect((await refreshForm(app, bob.tokens.refresh_token!)).status).toBe(200);
    // logout-all checks revocation: the access token it was called with is now refused there.
    const listed = await request(app)
      .get('/auth/sessions')
      .set('Authorization', `Bearer ${tablet.access_token}`);
    expect(listed.status).toBe(401);
  });

  it('a password change kills every session at once; the records are revoked; a fresh login works', async () => {
    const { app, runtime, clock } = backend;
    const alice = await signUp(app);
    const phone = await logIn(app, alice.email);
    const sessions = await request(app)
      .get('/auth/sessions')
      .set('Authorization', `Bearer ${phone.access_token}`);
    const sessionIds = sessions.body.sessions.map((s: { id: string }) => s.id) as string[];
    expect(sessionIds).toHaveLength(2);
    clock.advance(1_000);

    const changed = await request(app)
      .post('/auth/password')
      .set('Authorization', `Bearer ${phone.access_token}`)
      .send({ currentPassword: PASSWORD, newPassword: 'a brand new passphrase' });
    expect(changed.status).toBe(204);

    // At once: by version, before any job has run.
    expect((await refreshForm(app, alice.tokens.refresh_token!)).body).toEqual(INVALID_GRANT);
    expect((await refreshForm(app, phone.refresh_token!)).body).toEqual(INVALID_GRANT);
    const stale = await request(app)
      .post('/auth/password')
      .set('Authorization', `Bearer ${phone.access_token}`)
      .send({ currentPassword: 'a brand new passphrase', newPassword: 'yet another passphrase' });
    expect(stale.status).toBe(401);
    expect(stale.headers['www-authenticate']).toBe('Bearer error="invalid_token"');

    // The records themselves are revoked (inline, or by the worker's revoke-all job).
    for (const sessionId of sessionIds) {
      const record = await waitFor(() => runtime.repository.findBySessionId(sessionId), {
        what: `session ${sessionId} to be revoked by the password change`,
        until: (r) => r?.revokedReason === 'password_changed',
      });
      expect(record?.revokedReason).toBe('password_changed');
    }

    await expect(logIn(app, alice.email)).rejects.toThrow('401');
    clock.advance(1_000);
    const fresh = await logIn(app, alice.email, 'a brand new passphrase');
    const rotated = await refreshJson(app, fresh.refresh_token!);
    expect(rotated.status).toBe(200);
    const me = await request(app)
      .get('/me')
      .set('Authorization', `Bearer ${rotated.body.access_token}`);
    expect(me.body).toEqual({ id: alice.id, email: alice.email });
    const listed = await request(app)
      .get('/auth/sessions')
      .set('Authorization', `Bearer ${rotated.body.access_token}`);
    expect(listed.body.sessions).toHaveLength(1);
  });

  it('records last use of a session when /me is called (trackActivity)', async () => {
    const { app, runtime } = backend;
    const { tokens } = await signUp(app);
    const sessions = await request(app)
      .get('/auth/sessions')
      .set('Authorization', `Bearer ${tokens.access_token}`);
    const sessionId = sessions.body.sessions[0].id as string;
    expect((await runtime.repository.findBySessionId(sessionId))?.lastUsedAt).toBeNull();
    await request(app).get('/me').set('Authorization', `Bearer ${tokens.access_token}`).expect(200);
    const record = await waitFor(() => runtime.repository.findBySessionId(sessionId), {
      what: 'the touch of /me to record last use',
      until: (r) => r?.lastUsedAt != null,
    });
    expect(record?.lastUsedAt).toBeInstanceOf(Date);
  });

  it('runs in the intended mode and answers /healthz and /readyz', async () => {
    const { app } = backend;
    expect(backend.runtime.mode).toBe(mode);
    expect((await request(app).get('/healthz')).body).toEqual({ status: 'ok' });
    expect((await request(app).get('/readyz')).body).toEqual({ status: 'ready' });
  });
});

describe('the example app served over plain http (COOKIE_SECURE=false)', () => {
  it('keeps helmet but neither upgrades its own page to https nor sends HSTS, so a LAN address works', async () => {
    const plain = await startApp({ env: { COOKIE_SECURE: 'false' } });
    const secure = await startApp();
    try {
      const [plainPage, securePage] = await Promise.all([
        request(plain.app).get('/'),
        request(secure.app).get('/'),
      ]);
      expect(plainPage.status).toBe(200);
      expect(plainPage.headers['content-security-policy']).toMatch(/script-src 'self'/);
      expect(plainPage.headers['content-security-policy']).not.toMatch(/upgrade-insecure-requests/);
      expect(plainPage.headers['strict-transport-security']).toBeUndefined();
      expect(securePage.headers['content-security-policy']).toMatch(/upgrade-insecure-requests/);
      expect(securePage.headers['strict-transport-security']).toBeDefined();
    } finally {
      await Promise.all([plain.close(), secure.close()]);
    }
  });
});
