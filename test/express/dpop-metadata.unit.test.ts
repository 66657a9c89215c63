/** RFC 8414 metadata with DPoP: `dpop_signing_alg_values_supported` (RFC 9449 §5.1) when it is on. */
import { authorizationServerMetadata } from '../../src/adapters/express';
import { OptionsError } from '../../src/domain/errors';

const base = {
  issuer: 'https://api.example.com',
  tokenEndpoint: '/auth/token',
  revocationEndpoint: '/auth/revoke',
};

describe('authorizationServerMetadata with DPoP', () => {
  it('lists the DPoP algorithms the token endpoint accepts', () => {
    const { document } = authorizationServerMetadata({
      ...base,
      dpopSigningAlgorithms: ['ES256', 'EdDSA'],
    });
    expect(document.dpop_signing_alg_values_supported).toEqual(['ES256', 'EdDSA']);
  });

  it('has no DPoP field when DPoP is off', () => {
    expect(authorizationServerMetadata(base).document).not.toHaveProperty(
      'dpop_signing_alg_values_supported',
    );
  });

  it.each([[[]], [['HS256']], [['none']], ['ES256']])(
    'refuses dpopSigningAlgorithms %j with an OptionsError',
    (dpopSigningAlgorithms) => {
      expect(() =>
        authorizationServerMetadata({
          ...base,
          dpopSigningAlgorithms: dpopSigningAlgorithms as never,
        }),
      ).toThrow(OptionsError);
    },
  );
});
