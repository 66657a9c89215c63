/**
 * Issue 14, finding 10: standard revocation (RFC 7009, `POST /auth/revoke`) and server metadata
 * (RFC 8414, `/.well-known/oauth-authorization-server`), so OAuth client libraries need no custom
 * code. The routes on both backends through supertest; then a real client library, openid-client
 * v6 (ESM-only: run as its own node process), and curl, against the example app over real HTTP.
 */
import { execFile, spawn } from 'node:child_process';
import type { Server } from 'node:http';
import { join } from 'node:path';
import request from 'supertest';
import { authorizationServerMetadata } from '../../src/adapters/express';
import { OptionsError } from '../../src/domain/errors';
import { freePort } from '../support/servers';
import {
  logIn,
  refreshForm,
  signUp,
  bothStores,
  startApp,
  useApp,
  type TestApp,
  type TokenBody,
} from '../support/app-harness';

function revoke(backend: TestApp, fields: Record<string, unknown>) {
  return request(backend.app).post('/auth/revoke').type('form').send(fields);
}

async function sessionsStatus(backend: TestApp, tokens: TokenBody): Promise<number> {
  const response = await request(backend.app)
    .get('/auth/sessions')
    .set('Authorization', `Bearer ${tokens.access_token}`);
  return response.status;
}

describe.each(bothStores())('POST /auth/revoke (RFC 7009) on %s', (_name, start) => {
  const backend = useApp(() => start());

  it('a refresh token revokes its session: 200 with an empty body, then neither the refresh token nor its access token works', async () => {
    const { tokens } = await signUp(backend.app);
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
    const { tokens } = await signUp(backend.app);
    const response = await revoke(backend, {
      token: tokens.access_token,
      token_type_hint: 'refresh_token',
    });
    expect(response.status).toBe(200);
    expect((await refreshForm(backend.app, tokens.refresh_token!)).status).toBe(400);
    expect(await sessionsStatus(backend, tokens)).toBe(401);
  });

  it('answers 200 and changes nothing for unknown, forged, garbage or expired tokens and unknown hints', async () => {
    const { email, tokens } = await signUp(backend.app);
    const other = await logIn(backend.app, email);
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
    const expiring = await logIn(backend.app, email);
    backend.clock.advance(16 * 60_000);
    expect((await revoke(backend, { token: expiring.access_token })).status).toBe(200);
    expect((await refreshForm(backend.app, expiring.refresh_token!)).status).toBe(200);
    const fresh = await logIn(backend.app, email);
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
    const { tokens } = await signUp(backend.app);
    const json = await request(backend.app)
      .post('/auth/revoke')
      .send({ token: tokens.refresh_token });
    expect(json.status).toBe(200);
    expect((await refreshForm(backend.app, tokens.refresh_token!)).status).toBe(400);
  });
});

describe('authorizationServerMetadata() (RFC 8414)', () => {
  it('publishes the token and revocation endpoints under the host-root path with the issuer path appended', () => {
    const root = authorizationServerMetadata({
      issuer: 'https://api.example.com',
      tokenEndpoint: '/auth/token',
      revocationEndpoint: 'https://api.example.com/auth/revoke',
    });
    expect(root.path).toBe('/.well-known/oauth-authorization-server');
    expect(root.document).toEqual({
      issuer: 'https://api.example.com',
      token_endpoint: 'https://api.example.com/auth/token',
      revocation_endpoint: 'https://api.example.com/auth/revoke',
      response_types_supported: [],
      grant_types_supported: ['refresh_token'],
      token_endpoint_auth_methods_supported: ['none'],
      revocation_endpoint_auth_methods_supported: ['none'],
    });
    const tenant = authorizationServerMetadata({
      issuer: 'https://example.com/tenant-1',
      tokenEndpoint: '/tenant-1/auth/token',
      revocationEndpoint: '/tenant-1/auth/revoke',
    });
    expect(tenant.path).toBe('/.well-known/oauth-authorization-server/tenant-1');
    expect(tenant.document.token_endpoint).toBe('https://example.com/tenant-1/auth/token');
  });

  it('refuses an issuer that is not https (except on localhost) or has a query or fragment', () => {
    const endpoints = { tokenEndpoint: '/auth/token', revocationEndpoint: '/auth/revoke' };
    for (const issuer of [
      'http://api.example.com',
      'https://api.example.com/?tenant=1',
      'https://api.example.com/#x',
      'api.example.com',
      '',
    ]) {
      expect(() => authorizationServerMetadata({ issuer, ...endpoints })).toThrow(OptionsError);
    }
    expect(() =>
      authorizationServerMetadata({
        issuer: 'https://a.example',
        tokenEndpoint: '//evil.example/t',
        revocationEndpoint: '/r',
      }),
    ).toThrow(OptionsError);
    expect(
      authorizationServerMetadata({ issuer: 'http://127.0.0.1:3000', ...endpoints }).document
        .token_endpoint,
    ).toBe('http://127.0.0.1:3000/auth/token');
  });
});

interface ClientRun {
  metadata: Record<string, unknown>;
  refreshed: { token_type: string; expires_in: number; access_token: string; rotated: boolean };
  revoked: { ok: boolean; error?: string };
  afterRevocation: { ok: boolean; error?: string; status?: number };
  unknown: { ok: boolean; error?: string };
}

/** Run test/support/oauth-client.mjs in its own process group; killed with the group on timeout. */
function runOAuthClient(issuer: string, refreshToken: string): Promise<ClientRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [join(__dirname, '..', 'support', 'oauth-client.mjs'), issuer, refreshToken],
      { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(JSON.parse(out) as ClientRun);
      else reject(new Error(`oauth-client.mjs exited ${code}: ${err}${out}`));
    });
  });
}

function curl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('curl', ['-sS', '--max-time', '10', ...args], (error, stdout) =>
      error ? reject(error) : resolve(stdout),
    ),
  );
}

describe('the example app with a real OAuth client over HTTP', () => {
  let backend: TestApp;
  let server: Server;
  let issuer: string;

  beforeAll(async () => {
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    backend = await startApp({ env: { PORT: String(port), ACCESS_TOKEN_ISSUER: issuer } });
    server = await new Promise<Server>((resolve) => {
      const listening = backend.app.listen(port, '127.0.0.1', () => resolve(listening));
    });
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => {
      server?.close(() => resolve());
      server?.closeAllConnections();
    });
    await backend?.close();
  });

  it('openid-client discovers the endpoints, refreshes, and revokes with tokenRevocation; the revoked token then fails with invalid_grant', async () => {
    const { tokens } = await signUp(backend.app);
    const run = await runOAuthClient(issuer, tokens.refresh_token!);
    expect(run.metadata).toEqual(
      expect.objectContaining({
        issuer,
        token_endpoint: `${issuer}/auth/token`,
        revocation_endpoint: `${issuer}/auth/revoke`,
        grant_types_supported: ['refresh_token'],
        token_endpoint_auth_methods_supported: ['none'],
        revocation_endpoint_auth_methods_supported: ['none'],
      }),
    );
    expect(run.refreshed).toEqual({
      token_type: 'bearer',
      expires_in: 900,
      access_token: expect.any(String),
      rotated: true,
    });
    expect(run.revoked).toEqual({ ok: true });
    expect(run.afterRevocation).toEqual({ ok: false, error: 'invalid_grant', status: 400 });
    expect(run.unknown).toEqual({ ok: true });
    // The access token from the client's refresh belongs to the revoked session.
    const listed = await request(backend.app)
      .get('/auth/sessions')
      .set('Authorization', `Bearer ${run.refreshed.access_token}`);
    expect(listed.status).toBe(401);
  });

  it('curl: the metadata document and a form-encoded revocation', async () => {
    const metadata = JSON.parse(
      await curl([`${issuer}/.well-known/oauth-authorization-server`]),
    ) as Record<string, unknown>;
    expect(metadata.revocation_endpoint).toBe(`${issuer}/auth/revoke`);
    const { tokens } = await signUp(backend.app);
    const status = await curl([
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-d',
      `token=${tokens.refresh_token}`,
      '-d',
      'token_type_hint=refresh_token',
      `${issuer}/auth/revoke`,
    ]);
    expect(status).toBe('200');
    expect((await refreshForm(backend.app, tokens.refresh_token!)).status).toBe(400);
  });
});
