import { createSecretKey, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { JwtAccessTokens } from '../../src/adapters/jsonwebtoken/jwt-access-tokens';
import { resolveAccessTokenKeys, type AccessTokenKeyInput } from '../../src/domain/access-token';
import { InvalidAccessTokenError, OptionsError } from '../../src/domain/errors';
import { aSecret } from '../support/builders';
import { EPOCH } from '../support/fake-clock';

const subject = { userId: 'alice', sessionId: 'a'.repeat(32), version: 3 };
const later = (seconds: number) => new Date(EPOCH.getTime() + seconds * 1000);

function tokens(
  keys: AccessTokenKeyInput,
  extra: { issuer?: string; audience?: string } = {},
): JwtAccessTokens {
  return new JwtAccessTokens({ ...resolveAccessTokenKeys(keys), ttlMs: 900_000, ...extra });
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = generateKeyPairSync('ed25519');

/** A token with any payload, signed with the real key of `keys` (jsonwebtoken has no EdDSA signer). */
function signWith(keys: AccessTokenKeyInput, payload: object): string {
  const algorithm = keys.algorithm ?? 'HS256';
  if (algorithm === 'EdDSA') {
    const input = [{ alg: 'EdDSA', typ: 'JWT' }, payload]
      .map((part) => Buffer.from(JSON.stringify(part)).toString('base64url'))
      .join('.');
    const signature = cryptoSign(null, Buffer.from(input), keys.privateKey as never);
    return `${input}.${signature.toString('base64url')}`;
  }
  const key = keys.secret ?? keys.privateKey;
  return jwt.sign(payload, key as jwt.Secret, { algorithm });
}

describe.each([
  ['HS256', { secret: aSecret() }],
  ['HS512', { algorithm: 'HS512', secret: Buffer.alloc(64, 7) }],
  ['RS256', { algorithm: 'RS256', privateKey: rsa.privateKey, publicKey: rsa.publicKey }],
  [
    'ES256',
    {
      algorithm: 'ES256',
      privateKey: ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    },
  ],
  ['EdDSA', { algorithm: 'EdDSA', privateKey: ed.privateKey }],
] as const)('%s access tokens', (algorithm, keys) => {
  const signer = tokens(keys as AccessTokenKeyInput, { issuer: 'rr', audience: 'api' });

  it('carry sub, sid, ver, jti, iat, exp, iss and aud, and verify until they expire', () => {
    const token = signer.sign(subject, EPOCH);
    const header = JSON.parse(
      Buffer.from(token.split('.')[0] as string, 'base64url').toString(),
    ) as { alg: string };
    expect(header.alg).toBe(algorithm);
    const claims = signer.verify(token, later(899));
    expect(claims).toMatchObject({
      sub: 'alice',
      sid: subject.sessionId,
      ver: 3,
      iss: 'rr',
      aud: 'api',
    });
    expect(claims.iat).toBe(EPOCH.getTime() / 1000);
    expect(claims.exp).toBe(claims.iat + 900);
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(() => signer.verify(token, later(900))).toThrow(InvalidAccessTokenError);
  });

  it('get a fresh jti each time', () => {
    expect(signer.verify(signer.sign(subject, EPOCH), EPOCH).jti).not.toBe(
      signer.verify(signer.sign(subject, EPOCH), EPOCH).jti,
    );
  });

  it('reject a tampered payload', () => {
    const [header, , signature] = signer.sign(subject, EPOCH).split('.');
    const payload = Buffer.from(
      JSON.stringify({ sub: 'mallory', sid: 'x', ver: 99, jti: 'j', iat: 1, exp: 9e9 }),
    ).toString('base64url');
    expect(() => signer.verify(`${header}.${payload}.${signature}`, EPOCH)).toThrow(
      InvalidAccessTokenError,
    );
  });

  it('reject a wrong issuer or audience', () => {
    const token = signer.sign(subject, EPOCH);
    expect(() =>
      tokens(keys as AccessTokenKeyInput, { issuer: 'other', audience: 'api' }).verify(
        token,
        EPOCH,
      ),
    ).toThrow(InvalidAccessTokenError);
    expect(() =>
      tokens(keys as AccessTokenKeyInput, { issuer: 'rr', audience: 'other' }).verify(token, EPOCH),
    ).toThrow(InvalidAccessTokenError);
  });

  it('reject a token before its nbf, and accept it from then on', () => {
    const iat = EPOCH.getTime() / 1000;
    const claims = {
      sub: 'alice',
      sid: subject.sessionId,
      ver: 3,
      jti: 'j',
      iss: 'rr',
      aud: 'api',
    };
    const early = signWith(keys as AccessTokenKeyInput, {
      ...claims,
      iat,
      nbf: iat + 60,
      exp: iat + 900,
    });
    expect(() => signer.verify(early, later(59))).toThrow(InvalidAccessTokenError);
    expect(signer.verify(early, later(60)).sub).toBe('alice');
  });

  it('carry cnf.jkt when signed for a DPoP-bound session, and have no cnf otherwise', () => {
    const jkt = 'N'.repeat(43);
    expect(signer.verify(signer.sign({ ...subject, jkt }, EPOCH), EPOCH).cnf).toEqual({ jkt });
    expect(signer.verify(signer.sign(subject, EPOCH), EPOCH)).not.toHaveProperty('cnf');
    expect(() => signer.sign({ ...subject, jkt: 'not a thumbprint' }, EPOCH)).toThrow(TypeError);
  });

  it.each([
    ['a string', 'x'.repeat(43)],
    ['a jkt of the wrong length', { jkt: 'x'.repeat(42) }],
    ['a jkt outside base64url', { jkt: `${'x'.repeat(42)}=` }],
    ['another confirmation method', { 'x5t#S256': 'x'.repeat(43) }],
    ['null', null],
  ])('reject a signed token whose cnf is %s', (_label, cnf) => {
    const iat = EPOCH.getTime() / 1000;
    const token = signWith(keys as AccessTokenKeyInput, {
      sub: 'alice',
      sid: subject.sessionId,
      ver: 3,
      jti: 'j',
      iss: 'rr',
      aud: 'api',
      iat,
      exp: iat + 900,
      cnf,
    });
    expect(() => signer.verify(token, EPOCH)).toThrow(InvalidAccessTokenError);
  });

  it("reject an unsigned ('none') token", () => {
    const none = jwt.sign({ sub: 'alice', sid: 's', ver: 3, jti: 'j', iat: 1, exp: 9e9 }, null, {
      algorithm: 'none',
    });
    expect(() => signer.verify(none, EPOCH)).toThrow(InvalidAccessTokenError);
  });
});

describe('algorithm pinning', () => {
  it('an HS256 token is refused by a verifier pinned to HS512 even with the same secret', () => {
    const secret = aSecret();
    const token = tokens({ secret }).sign(subject, EPOCH);
    expect(() => tokens({ algorithm: 'HS512', secret }).verify(token, EPOCH)).toThrow(
      InvalidAccessTokenError,
    );
  });

  it('an HS256 token keyed with the RSA public key is refused by the RS256 verifier (no key confusion)', () => {
    const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const forged = jwt.sign(
      { sub: 'mallory', sid: 's', ver: 9, jti: 'j', iat: 1, exp: 9e9 },
      createSecretKey(Buffer.from(pem)),
      {
        algorithm: 'HS256',
      },
    );
    expect(() =>
      tokens({ algorithm: 'RS256', privateKey: rsa.privateKey }).verify(forged, EPOCH),
    ).toThrow(InvalidAccessTokenError);
  });

  it('a token missing the session claims is refused', () => {
    const secret = aSecret();
    const bare = jwt.sign(
      { sub: 'alice', iat: 1, exp: 9e9 },
      createSecretKey(Buffer.from(secret)),
      { algorithm: 'HS256' },
    );
    expect(() => tokens({ secret }).verify(bare, EPOCH)).toThrow(
      'access token lacks required claims',
    );
  });
});

describe('key validation', () => {
  it('refuses a public key that does not match the private key', () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect(() =>
      tokens({ algorithm: 'RS256', privateKey: rsa.privateKey, publicKey: other.publicKey }),
    ).toThrow('accessToken.publicKey does not match accessToken.privateKey');
  });

  it('refuses an RSA key under 2048 bits', () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    expect(() =>
      resolveAccessTokenKeys({ algorithm: 'RS256', privateKey: weak.privateKey }),
    ).toThrow(OptionsError);
  });

  it('refuses an HS algorithm without a secret', () => {
    expect(() => resolveAccessTokenKeys({})).toThrow(/accessToken\.secret is required/);
  });
});
