/**
 * Issue 14, finding 10: standard revocation (RFC 7009, `POST /auth/revoke`), so OAuth client
 * libraries need no custom code: the router's route on a bare express(), in memory and on the
 * MongoDB-wire server + BullMQ. A real client library against the example app is
 * test/demo/oauth-client.test.ts.
 */
import request from 'supertest';
import type { TokenResponseBody } from '../../src/adapters/express';
import { aUserId, refreshForm, useRouter, type RouterHarness } from '../support/router-harness';
import { routerStores } from '../support/router-stores';

function revoke(backend: RouterHarness, fields: Record<string, unknown>) {
  return request(backend.app).post('/auth/revoke').type('form').send(fields);
}

async function sessionsStatus(backend: RouterHarness, tokens: TokenResponseBody): Promise<number> {
  const response = await request(backend.app)
    .get('/auth/sessions')
    .set('Authorization', `Bearer ${tokens.access_token}`);
  return response.status;
}

describe.each(routerStores())('POST /auth/revoke (RFC 7009) on %s', (_name, start) => {
  const backend = useRouter(start);

  it('a refresh token revokes its session: 200 with an empty body, then neither the refresh token nor its access token works', async () => {
    const tokens = await backend.tokens();
    const response = await revoke(backend, {
      token: tokens.refresh_token,
      token_type_hint: 'refresh_token',
      client_id: 'any-public-client',
    });
    expect(response.status).toBe(200);
    expect(response.text).toBe('');
    expect(response.headers['cache-control']).toBe('no-store');
    expect((await refreshForm(backend.app, tokens.refresh_token!)).status).toBe(400);
    expect(await sessionsStatus(backend, tokens)).toBe(401);
  });

  it('an access token revokes its session too, whatever the hint says', async () => {
    const tokens = await backend.tokens();
    const response = await revoke(backend, {
      token: tokens.access_token,
      token_type_hint: 'refresh_token',
    });
    expect(response.status).toBe(200);
    expect((await refreshForm(backend.app, tokens.refresh_token!)).status).toBe(400);
    expect(await sessionsStatus(backend, tokens)).toBe(401);
  });

  it('answers 200 and changes nothing for unknown, forged, garbage or expired tokens and unknown hints', async () => {
    const userId = aUserId();
    const tokens = await backend.tokens(userId);
    const other = await backend.tokens(userId);
    const forged = `${tokens.refresh_token!.slice(0, -2)}${tokens.refresh_token!.endsWith('A') ? 'BB' : 'AA'}`;
    const [header, payload] = tokens.access_token.split('.');
    const tamperedJwt = `${header}.${payload}.${'A'.repeat(43)}`;
    for (const token of ['rt_unknown', forged, 'garbage', tamperedJwt, 'x'.repeat(3000)]) {
      const response = await revoke(backend, { token, token_type_hint: 'something_else' });
      expect(response.status).toBe(200);
    }
    expect(await sessionsStatus(backend, tokens)).toBe(200);
    expect(await sessionsStatus(backend, other)).toBe(200);
    const sessionsBefore = await request(backend.app)
      .get('/auth/sessions')
      .set('Authorization', `Bearer ${tokens.access_token}`);
    expect(sessionsBefore.body.sessions).toHaveLength(2);
    // An access token past its expiry is not a credential any more: it revokes nothing.
    const expiring = await backend.tokens(userId);
    backend.clock.advance(16 * 60_000);
    expect((await revoke(backend, { token: expiring.access_token })).status).toBe(200);
    expect((await refreshForm(backend.app, expiring.refresh_token!)).status).toBe(200);
    const fresh = await backend.tokens(userId);
    // Revoking twice is fine too.
    expect((await revoke(backend, { token: other.refresh_token })).status).toBe(200);
    expect((await revoke(backend, { token: other.refresh_token })).status).toBe(200);
    expect(await sessionsStatus(backend, fresh)).toBe(200);
  });

  it('answers 400 invalid_request without a token or with a repeated one, and accepts a JSON body', async () => {
    for (const fields of [{}, { token: '' }, { token_type_hint: 'refresh_token' }]) {
      const response = await revoke(backend, fields);
      expect(response.status).toBe(400);
      expect(response.body.error).toBe('invalid_request');
    }
    const repeated = await request(backend.app)
      .post('/auth/revoke')
      .type('form')
      .send('token=a&token=b');
    expect(repeated.status).toBe(400);
    const tokens = await backend.tokens();
    const json = await request(backend.app)
      .post('/auth/revoke')
      .send({ token: tokens.refresh_token });
    expect(json.status).toBe(200);
    expect((await refreshForm(backend.app, tokens.refresh_token!)).status).toBe(400);
  });
});
