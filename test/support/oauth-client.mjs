// A real OAuth client (openid-client v6, ESM-only, hence its own process) against a running server:
// RFC 8414 discovery from the issuer, a refresh_token grant, RFC 7009 revocation of the new refresh
// token, then a refresh with the revoked token and a revocation of an unknown token. Prints one
// JSON line. Usage: node oauth-client.mjs <issuer> <refresh token>
import { URL } from 'node:url';
import * as client from 'openid-client';

const [issuer, refreshToken] = process.argv.slice(2);
const outcome = async (operation) => {
  try {
    return { ok: true, value: await operation() };
  } catch (error) {
    return { ok: false, error: error.error ?? error.code ?? error.name, status: error.status };
  }
};

// v6 refuses http by default; the test server is on http://127.0.0.1.
const config = await client.discovery(
  new URL(issuer),
  'refresh-rotation-test',
  undefined,
  client.None(),
  {
    algorithm: 'oauth2',
    execute: [client.allowInsecureRequests],
  },
);
const metadata = config.serverMetadata();
const refreshed = await client.refreshTokenGrant(config, refreshToken);
const revoked = await outcome(() =>
  client.tokenRevocation(config, refreshed.refresh_token, { token_type_hint: 'refresh_token' }),
);
const afterRevocation = await outcome(() =>
  client.refreshTokenGrant(config, refreshed.refresh_token),
);
const unknown = await outcome(() => client.tokenRevocation(config, 'rt_not-a-token-we-issued'));

process.stdout.write(
  JSON.stringify({
    metadata,
    refreshed: {
      token_type: refreshed.token_type,
      expires_in: refreshed.expires_in,
      access_token: refreshed.access_token,
      rotated:
        typeof refreshed.refresh_token === 'string' && refreshed.refresh_token !== refreshToken,
    },
    revoked: { ok: revoked.ok, error: revoked.error },
    afterRevocation: {
      ok: afterRevocation.ok,
      error: afterRevocation.error,
      status: afterRevocation.status,
    },
    unknown: { ok: unknown.ok, error: unknown.error },
  }) + '\n',
);
