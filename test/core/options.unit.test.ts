import { generateKeyPairSync } from 'node:crypto';
import {
  InlineTokenJobs,
  MemoryRefreshTokenRepository,
  MemoryVersionStore,
} from '../../src/adapters/memory';
import { OptionsError } from '../../src/domain/errors';
import { parseDuration, resolveOptions, type RefreshRotationOptions } from '../../src/options';
import { aSecret } from '../support/builders';

function options(overrides: Partial<RefreshRotationOptions> = {}): RefreshRotationOptions {
  return {
    repository: new MemoryRefreshTokenRepository(),
    versions: new MemoryVersionStore(),
    accessToken: { secret: aSecret() },
    refreshToken: { secrets: [aSecret()] },
    ...overrides,
  };
}

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['10s', 10_000],
    ['15m', 900_000],
    ['12h', 43_200_000],
    ['30d', 2_592_000_000],
    ['2w', 1_209_600_000],
    ['1.5h', 5_400_000],
    [0, 0],
    [1234, 1234],
  ])('reads %p as %p ms', (input, expected) => {
    expect(parseDuration(input, 'x')).toBe(expected);
  });

  it.each([-1, '-5m', 'soon', '15', '15 minutes', Number.NaN, Number.POSITIVE_INFINITY, null, {}])(
    'rejects %p with an OptionsError naming the option',
    (input) => {
      expect(() => parseDuration(input, 'refreshToken.idleTtl')).toThrow(OptionsError);
      expect(() => parseDuration(input, 'refreshToken.idleTtl')).toThrow(/^refreshToken\.idleTtl /);
    },
  );

  it('says what a negative duration should be', () => {
    expect(() => parseDuration(-1, 'accessToken.ttl')).toThrow(
      'accessToken.ttl must not be negative; got -1',
    );
  });
});

describe('resolveOptions', () => {
  it('fills the documented defaults and freezes the result', () => {
    const resolved = resolveOptions(options());
    expect(resolved.accessToken).toMatchObject({ algorithm: 'HS256', ttlMs: 900_000 });
    expect(resolved.refreshToken).toMatchObject({
      idleTtlMs: 30 * 86_400_000,
      absoluteTtlMs: 90 * 86_400_000,
      reuseGraceMs: 10_000,
    });
    expect(resolved.jobs).toBeInstanceOf(InlineTokenJobs);
    expect(resolved.clock.now()).toBeInstanceOf(Date);
    expect(Object.isFrozen(resolved)).toBe(true);
    expect(Object.isFrozen(resolved.accessToken)).toBe(true);
    expect(Object.isFrozen(resolved.refreshToken)).toBe(true);
  });

  it('converts the access secret to a KeyObject once', () => {
    const resolved = resolveOptions(options());
    expect(resolved.accessToken.signingKey.type).toBe('secret');
  });

  it('accepts reuseGrace 0 (disabled)', () => {
    const resolved = resolveOptions(
      options({ refreshToken: { secrets: [aSecret()], reuseGrace: 0 } }),
    );
    expect(resolved.refreshToken.reuseGraceMs).toBe(0);
  });

  it('rejects a too-short refresh secret with a named error', () => {
    const short = options({ refreshToken: { secrets: ['too-short'] } });
    expect(() => resolveOptions(short)).toThrow(OptionsError);
    expect(() => resolveOptions(short)).toThrow(
      /refreshToken\.secrets\[0\] must be at least 32 bytes; got 9/,
    );
  });

  it('rejects a too-short access secret with a named error', () => {
    const short = options({ accessToken: { secret: 'x'.repeat(31) } });
    expect(() => resolveOptions(short)).toThrow(
      'accessToken.secret must be at least 32 bytes; got 31',
    );
  });

  it('rejects an unknown algorithm with a named error', () => {
    const unknown = options({ accessToken: { secret: aSecret(), algorithm: 'none' as 'HS256' } });
    expect(() => resolveOptions(unknown)).toThrow(OptionsError);
    expect(() => resolveOptions(unknown)).toThrow(
      /^accessToken\.algorithm must be one of HS256, HS384, HS512, RS256, ES256, EdDSA; got none$/,
    );
  });

  it.each([
    ['refreshToken.idleTtl', { refreshToken: { secrets: [aSecret()], idleTtl: -1 } }],
    ['refreshToken.absoluteTtl', { refreshToken: { secrets: [aSecret()], absoluteTtl: '-90d' } }],
    ['refreshToken.reuseGrace', { refreshToken: { secrets: [aSecret()], reuseGrace: -10 } }],
    ['accessToken.ttl', { accessToken: { secret: aSecret(), ttl: -60_000 } }],
  ] as const)('rejects a negative %s with a named error', (name, overrides) => {
    expect(() => resolveOptions(options(overrides))).toThrow(OptionsError);
    expect(() => resolveOptions(options(overrides))).toThrow(`${name} must not be negative`);
  });

  it('rejects an idle lifetime longer than the absolute one', () => {
    const inverted = options({ refreshToken: { secrets: [aSecret()], idleTtl: '91d' } });
    expect(() => resolveOptions(inverted)).toThrow(
      /idleTtl .* must not exceed refreshToken\.absoluteTtl/,
    );
  });

  it('rejects an access-token lifetime under a second', () => {
    expect(() => resolveOptions(options({ accessToken: { secret: aSecret(), ttl: 999 } }))).toThrow(
      /accessToken\.ttl must be at least 1000ms/,
    );
  });

  it('rejects a missing repository, naming the missing methods', () => {
    const missing = options({ repository: {} as RefreshRotationOptions['repository'] });
    expect(() => resolveOptions(missing)).toThrow(
      /^repository must implement .*; missing save, findBySessionId/,
    );
  });

  it('rejects missing refresh options', () => {
    const missing = { ...options(), refreshToken: undefined } as unknown as RefreshRotationOptions;
    expect(() => resolveOptions(missing)).toThrow('refreshToken is required (an object)');
  });

  describe('asymmetric keys', () => {
    it('accepts an RS256 key pair and derives the public key when it is omitted', () => {
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const resolved = resolveOptions(options({ accessToken: { algorithm: 'RS256', privateKey } }));
      expect(resolved.accessToken.verificationKey.type).toBe('public');
    });

    it('rejects a key of the wrong type for the algorithm', () => {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      expect(() =>
        resolveOptions(options({ accessToken: { algorithm: 'RS256', privateKey } })),
      ).toThrow(/RS256 needs an RSA key of at least 2048 bits; got ec key/);
    });

    it('rejects a secret given for an asymmetric algorithm and a key pair given for HS256', () => {
      const { privateKey } = generateKeyPairSync('ed25519');
      expect(() =>
        resolveOptions(options({ accessToken: { algorithm: 'EdDSA', secret: aSecret() } })),
      ).toThrow(OptionsError);
      expect(() =>
        resolveOptions(options({ accessToken: { algorithm: 'HS256', privateKey } })),
      ).toThrow(OptionsError);
    });

    it('rejects an invalid PEM string', () => {
      expect(() =>
        resolveOptions(
          options({ accessToken: { algorithm: 'ES256', privateKey: '-----BEGIN nonsense' } }),
        ),
      ).toThrow(/accessToken\.privateKey is not a valid PEM key/);
    });
  });
});
