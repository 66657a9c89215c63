/**
 * Issue 14, finding 6: signing one session out must cut off its access token on the router's
 * routes that check revocation, so a signed-out thief can neither list the owner's sessions nor
 * delete the owner's live one nor sign everyone out; `authenticate()` without the check still
 * takes it until it expires. On the in-memory adapters and on the MongoDB-wire server + BullMQ.
 */
import request from 'supertest';
import type { TokenResponseBody } from '../../src/adapters/express';
import { aUserId, bearer, refreshForm, useRouter } from '../support/router-harness';
import { routerStores } from '../support/router-stores';

function sessionIdOf(tokens: TokenResponseBody): string {
  const [, payload] = tokens.access_token.split('.');
  return (JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as { sid: string }).sid;
}

describe.each(routerStores())('per-session cut-off in the router on %s', (_name, start) => {
  const backend = useRouter(start);

  /** The owner's session and a second one the thief copied (access and refresh token). */
  async function ownerAndThief() {
    const { app } = backend;
    const userId = aUserId();
    const owner = await backend.tokens(userId);
    const stolen = await backend.tokens(userId);
    // Both sessions work on the revocation-checked routes before anything happens.
    for (const tokens of [owner, stolen]) {
      const listed = await request(app).get('/auth/sessions').set('Authorization', bearer(tokens));
      expect(listed.status).toBe(200);
    }
    return { app, owner, stolen };
  }

  async function expectCutOff(stolen: TokenResponseBody, owner: TokenResponseBody): Promise<void> {
    const { app } = backend;
    const list = await request(app).get('/auth/sessions').set('Authorization', bearer(stolen));
    expect(list.status).toBe(401);
    expect(list.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    const remove = await request(app)
      .delete(`/auth/sessions/${sessionIdOf(owner)}`)
      .set('Authorization', bearer(stolen));
    expect(remove.status).toBe(401);
    const logoutAll = await request(app)
      .post('/auth/logout-all')
      .set('Authorization', bearer(stolen));
    expect(logoutAll.status).toBe(401);
    // The owner's session is untouched and still works.
    const mine = await request(app).get('/auth/sessions').set('Authorization', bearer(owner));
    expect(mine.status).toBe(200);
    expect(mine.body.sessions.map((s: { id: string }) => s.id)).toEqual([sessionIdOf(owner)]);
  }

  it('an access token whose session was deleted from the sessions page is refused on checked routes', async () => {
    const { app, owner, stolen } = await ownerAndThief();
    const deleted = await request(app)
      .delete(`/auth/sessions/${sessionIdOf(stolen)}`)
      .set('Authorization', bearer(owner));
    expect(deleted.status).toBe(204);
    await expectCutOff(stolen, owner);
    // Routes behind authenticate() without the check still take it until it expires: the
    // documented trade-off.
    const stateless = await request(app).get('/api/whoami').set('Authorization', bearer(stolen));
    expect(stateless.status).toBe(200);
  });

  it('an access token whose session logged out (refresh token) is refused on checked routes', async () => {
    const { app, owner, stolen } = await ownerAndThief();
    const logout = await request(app)
      .post('/auth/logout')
      .send({ refresh_token: stolen.refresh_token });
    expect(logout.status).toBe(204);
    await expectCutOff(stolen, owner);
  });

  it('an access token whose session was revoked for reuse is refused on checked routes', async () => {
    const { app, owner, stolen } = await ownerAndThief();
    const rotated = await refreshForm(app, stolen.refresh_token!);
    expect(rotated.status).toBe(200);
    backend.clock.advance(11_000); // past the 10 s reuse grace
    const replay = await refreshForm(app, stolen.refresh_token!);
    expect(replay.status).toBe(400);
    const fresh = rotated.body as TokenResponseBody;
    const list = await request(app).get('/auth/sessions').set('Authorization', bearer(fresh));
    expect(list.status).toBe(401);
    await expectCutOff(stolen, owner);
  });
});
