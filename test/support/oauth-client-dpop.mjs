// A real DPoP client (openid-client v6, ESM-only, hence its own process) against a running server:
// RFC 8414 discovery, a key pair made here and never sent anywhere, a refresh_token grant with a
// proof (which binds the session), a second one, and GET /me with the DPoP scheme. It then prints
// one JSON line and waits for a line on stdin, so the test can try the bound tokens without the
// key, before one more refresh and GET /me prove the session is alive. One JSON line per phase.
// Usage: node oauth-client-dpop.mjs <issuer> <refresh token>
import { createInterface } from 'node:readline';
import { URL } from 'node:url';
import * as client from 'openid-client';

const [issuer, refreshToken] = process.argv.slice(2);
const print = (value) => process.stdout.write(JSON.stringify(value) + '\n');

// v6 refuses http by default; the test server is on http://127.0.0.1.
const config = await client.discovery(
  new URL(issuer),
  'refresh-rotation-test',
  undefined,
  client.None(),
  { algorithm: 'oauth2', execute: [client.allowInsecureRequests] },
);
const keyPair = await client.randomDPoPKeyPair('ES256');
const DPoP = client.getDPoPHandle(config, keyPair);

const tokens = (response) => ({
  token_type: response.token_type,
  access_token: response.access_token,
  refresh_token: response.refresh_token,
});
const me = async (accessToken) => {
  const response = await client.fetchProtectedResource(
    config,
    accessToken,
    new URL('/me', issuer),
    'GET',
    undefined,
    undefined,
    { DPoP },
  );
  return { status: response.status, body: await response.json() };
};

const bound = await client.refreshTokenGrant(config, refreshToken, undefined, { DPoP });
const again = await client.refreshTokenGrant(config, bound.refresh_token, undefined, { DPoP });
print({
  metadata: config.serverMetadata(),
  bound: tokens(bound),
  again: tokens(again),
  me: await me(again.access_token),
});

for await (const _line of createInterface({ input: process.stdin })) break;
const after = await client.refreshTokenGrant(config, again.refresh_token, undefined, { DPoP });
print({ after: tokens(after), me: await me(after.access_token) });
