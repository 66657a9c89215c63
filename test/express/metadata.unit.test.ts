/**
 * Issue 14, finding 10: server metadata (RFC 8414, `/.well-known/oauth-authorization-server`) from
 * `authorizationServerMetadata()`: the document, its path, and the issuers it refuses.
 */
import { authorizationServerMetadata } from '../../src/adapters/express';
import { OptionsError } from '../../src/domain/errors';

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
