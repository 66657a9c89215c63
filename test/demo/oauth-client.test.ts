/**
 * Issue 14, finding 10, as an OAuth client meets it: a real client library, openid-client v6
 * (ESM-only: run as its own node process), and curl, against the example app over real HTTP
 * (its metadata route at `/.well-known/oauth-authorization-server`, its token and revocation
 * routes). The router's revocation route is test/express/revocation.test.ts, the metadata
 * document test/express/metadata.unit.test.ts.
 */
import { execFile, spawn } from 'node:child_process';
import type { Server } from 'node:http';
import { join } from 'node:path';
import request from 'supertest';
import { freePort } from '../support/servers';
import { refreshForm, signUp, startApp, type TestApp } from '../support/app-harness';

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
