/**
 * Issue 14, finding 6, on the example app's own routes: once one session is signed out (deleted
 * from the sessions page, logged out, revoked for reuse), its access token cannot change the
 * password (`/auth/password` checks revocation), while `/me` (no check) still takes it until it
 * expires. On the in-memory adapters and on the real MongoDB-wire server + BullMQ. The router's
 * own checked routes are test/express/session-cutoff.test.ts.
 */
import request from 'supertest';
import {
  logIn,
  refreshForm,
  signUp,
  bothStores,
  useApp,
  type TokenBody,
} from '../support/app-harness';

function bearer(tokens: TokenBody): string {
  return `Bearer ${tokens.access_token}`;
}

function sessionIdOf(tokens: TokenBody): string {
  const [, payload] = tokens.access_token.split('.');
  return (JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as { sid: string }).sid;
}

describe.each(bothStores())('cut-off sessions on the demo’s own routes, %s', (_name, start) => {
  const backend = useApp(() => start());

  /** The owner's session and a second one the thief copied (access and refresh token). */
  async function ownerAndThief() {
    const { app } = backend;
    const { email, tokens: owner } = await signUp(app);
    const stolen = await logIn(app, email);
    // Both sessions work on the revocation-checked routes before anything happens.
    for (const tokens of [owner, stolen]) {
      const listed = await request(app).get('/auth/sessions').set('Authorization', bearer(tokens));
      expect(listed.status).toBe(200);
    }
    return { app, email, owner, stolen };
  }

  async function expectCutOff(stolen: TokenBody, owner: TokenBody): Promise<void> {
    const { app } = backend;
    const password = await request(app)
      .post('/auth/password')
      .set('Authorization', bearer(stolen))
      .send({ currentPassword: 'guess-guess-guess', newPassword: 'thief-chosen-password' });
    expect(password.status).toBe(401);
    expect(password.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    // The owner's session is untouched and still works.
    const mine = await request(app).get('/auth/sessions').set('Authorization', bearer(owner));
    expect(mine.status).toBe(200);
    expect(mine.body.sessions.map((s: { id: string }) => s.id)).toEqual([sessionIdOf(owner)]);
  }

  it('an access token whose session was deleted from the sessions page cannot change the password', async () => {
    const { app, owner, stolen } = await ownerAndThief();
    const deleted = await request(app)
      .delete(`/auth/sessions/${sessionIdOf(stolen)}`)
      .set('Authorization', bearer(owner));
    expect(deleted.status).toBe(204);
    await expectCutOff(stolen, owner);
    // Stateless routes (no check) still take it until it expires: the documented trade-off.
    const me = await request(app).get('/me').set('Authorization', bearer(stolen));
    expect(me.status).toBe(200);
  });

  it('an access token whose session logged out (refresh token) cannot change the password', async () => {
    const { app, owner, stolen } = await ownerAndThief();
    const logout = await request(app)
      .post('/auth/logout')
      .send({ refresh_token: stolen.refresh_token });
    expect(logout.status).toBe(204);
    await expectCutOff(stolen, owner);
  });

  it('an access token whose session was revoked for reuse cannot change the password', async () => {
    const { app, owner, stolen } = await ownerAndThief();
    const rotated = await refreshForm(app, stolen.refresh_token!);
    expect(rotated.status).toBe(200);
    backend.clock.advance(11_000); // past the 10 s reuse grace
    const replay = await refreshForm(app, stolen.refresh_token!);
    expect(replay.status).toBe(400);
    const fresh = rotated.body as TokenBody;
    const password = await request(app)
      .post('/auth/password')
      .set('Authorization', bearer(fresh))
      .send({ currentPassword: 'guess-guess-guess', newPassword: 'thief-chosen-password' });
    expect(password.status).toBe(401);
    await expectCutOff(stolen, owner);
  });
});
