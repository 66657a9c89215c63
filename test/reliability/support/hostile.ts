/**
 * Generators of hostile requests for the fuzz run: tokens (random, truncated, bit-flipped,
 * re-encoded, forged JWTs of every known trick) and request shapes (bodies, content types,
 * duplicate parameters, unicode, header injection). Pure: the test supplies the valid material
 * the mutations start from.
 */
import { generateKeyPairSync, createHmac, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import jwt from 'jsonwebtoken';

/** What the attacker knows or has captured, and what it mutates. */
export interface Material {
  /** The app's access-token algorithm. */
  algorithm: 'HS256' | 'RS256';
  /** HS256: the app's secret (used only to forge tokens a correct server must still refuse: wrong alg, expired, nbf). */
  secret?: string;
  /** RS256: the app's private key (same use) and its public key (public by nature: algorithm confusion). */
  privateKey?: KeyObject;
  publicKeyPem?: string;
  /** Valid tokens of victim sessions: mutated, never sent as they are. */
  victimAccessTokens: string[];
  victimRefreshTokens: string[];
  victimSessionIds: string[];
  victimUserId: string;
}

const attackerKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });

function b64(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString(
    'base64url',
  );
}

function claims(
  material: Material,
  sessionId: string,
  now: number,
  extra: Record<string, unknown> = {},
) {
  return {
    sub: material.victimUserId,
    sid: sessionId,
    ver: 0,
    jti: 'x',
    iat: now,
    exp: now + 900,
    ...extra,
  };
}

function hmac(
  algorithm: 'sha256' | 'sha384' | 'sha512',
  key: string | Buffer,
  input: string,
): string {
  return createHmac(algorithm, key).update(input).digest('base64url');
}

/** JWTs built with every known trick; a correct server refuses each. */
export function forgedJwt(material: Material): fc.Arbitrary<string> {
  const session = fc.constantFrom(...material.victimSessionIds);
  const now = Math.floor(Date.now() / 1000);
  const unsigned = (header: object, body: object, signature = '') =>
    `${b64(header)}.${b64(body)}.${signature}`;
  const tricks: Array<fc.Arbitrary<string>> = [
    // alg none, in every spelling, with and without a signature.
    fc
      .tuple(
        session,
        fc.constantFrom('none', 'None', 'NONE', 'nOnE', ''),
        fc.constantFrom('', 'AAAA', 'sig'),
      )
      .map(([sid, alg, sig]) => unsigned({ alg, typ: 'JWT' }, claims(material, sid, now), sig)),
    // Signed with a key the server does not know.
    session.map((sid) =>
      jwt.sign(claims(material, sid, now), attackerKeys.privateKey, { algorithm: 'RS256' }),
    ),
    session.map((sid) =>
      jwt.sign(claims(material, sid, now), 'attacker-secret-0123456789abcdef0123456789', {
        algorithm: 'HS256',
      }),
    ),
    // The victim's header and payload with the signature of another token.
    fc.tuple(fc.constantFrom(...material.victimAccessTokens), session).map(([token, sid]) => {
      const [header, , signature] = token.split('.');
      return `${header}.${b64(claims(material, sid, now, { sub: 'someone-else' }))}.${signature}`;
    }),
    // Header tricks: kid path traversal, jku/x5u pointing elsewhere, crit, embedded jwk.
    fc
      .tuple(
        session,
        fc.constantFrom(
          { kid: '../../../../dev/null' },
          { kid: "' OR '1'='1" },
          { jku: 'https://attacker.example/jwks.json' },
          { x5u: 'https://attacker.example/cert.pem' },
          { crit: ['exp'] },
          { jwk: { kty: 'oct', k: b64('k') } },
        ),
      )
      .map(([sid, header]) =>
        jwt.sign(claims(material, sid, now), 'attacker-secret-0123456789abcdef0123456789', {
          algorithm: 'HS256',
          header: { alg: 'HS256', ...header } as jwt.JwtHeader,
        }),
      ),
  ];
  if (material.algorithm === 'HS256' && material.secret) {
    const secret = material.secret;
    tricks.push(
      // The real secret with another HMAC algorithm: the algorithm is pinned, so refused.
      fc
        .tuple(session, fc.constantFrom('HS384', 'HS512') as fc.Arbitrary<'HS384' | 'HS512'>)
        .map(([sid, algorithm]) => jwt.sign(claims(material, sid, now), secret, { algorithm })),
      // The real key, but expired, or not valid yet, or missing claims.
      fc.tuple(session, fc.integer({ min: 1, max: 10_000_000 })).map(([sid, ago]) =>
        jwt.sign(claims(material, sid, now - ago - 900, { exp: now - ago }), secret, {
          algorithm: 'HS256',
          noTimestamp: true,
        }),
      ),
      fc.tuple(session, fc.integer({ min: 60, max: 10_000_000 })).map(([sid, ahead]) =>
        jwt.sign(claims(material, sid, now, { nbf: now + ahead }), secret, {
          algorithm: 'HS256',
          noTimestamp: true,
        }),
      ),
      fc
        .tuple(session, fc.constantFrom('sub', 'sid', 'ver', 'jti', 'exp'))
        .map(([sid, drop]) => {
          const body: Record<string, unknown> = claims(material, sid, now);
          delete body[drop];
          return unsigned({ alg: 'HS256', typ: 'JWT' }, body, '') + '';
        })
        .map((token) => {
          const [header, body] = token.split('.');
          return `${header}.${body}.${hmac('sha256', secret, `${header}.${body}`)}`;
        }),
    );
  }
  if (material.algorithm === 'RS256' && material.privateKey && material.publicKeyPem) {
    const privateKey = material.privateKey;
    const publicPem = material.publicKeyPem;
    tricks.push(
      // Algorithm confusion: HS256 with the RS public key (PEM text, and its DER bytes) as the HMAC secret.
      fc.tuple(session, fc.constantFrom('pem', 'pem-trimmed', 'der')).map(([sid, form]) => {
        const header = b64({ alg: 'HS256', typ: 'JWT' });
        const body = b64(claims(material, sid, now));
        const key =
          form === 'pem'
            ? publicPem
            : form === 'pem-trimmed'
              ? publicPem.trim()
              : Buffer.from(publicPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
        return `${header}.${body}.${hmac('sha256', key, `${header}.${body}`)}`;
      }),
      // The real private key, but PS256 / RS512 instead of the pinned RS256.
      fc
        .tuple(
          session,
          fc.constantFrom('PS256', 'RS512', 'RS384') as fc.Arbitrary<'PS256' | 'RS512' | 'RS384'>,
        )
        .map(([sid, algorithm]) => jwt.sign(claims(material, sid, now), privateKey, { algorithm })),
      fc.tuple(session, fc.integer({ min: 1, max: 10_000_000 })).map(([sid, ago]) =>
        jwt.sign(claims(material, sid, now - ago - 900, { exp: now - ago }), privateKey, {
          algorithm: 'RS256',
          noTimestamp: true,
        }),
      ),
      fc.tuple(session, fc.integer({ min: 60, max: 10_000_000 })).map(([sid, ahead]) =>
        jwt.sign(claims(material, sid, now, { nbf: now + ahead }), privateKey, {
          algorithm: 'RS256',
          noTimestamp: true,
        }),
      ),
    );
  }
  return fc.oneof(...tricks);
}

/** Flip one bit of one character of `token`. */
function flipChar(token: string, index: number, bit: number): string {
  const i = index % token.length;
  return (
    token.slice(0, i) + String.fromCharCode(token.charCodeAt(i) ^ (1 << bit)) + token.slice(i + 1)
  );
}

/** Flip one bit of the decoded bytes of a base64url segment and re-encode canonically (so parsing succeeds and the MAC/signature check is what refuses it). */
function flipDecoded(token: string, index: number, bit: number): string {
  if (token.startsWith('rt_')) {
    const bytes = Buffer.from(token.slice(3), 'base64url');
    bytes[index % bytes.length]! ^= 1 << bit;
    return 'rt_' + bytes.toString('base64url');
  }
  const parts = token.split('.');
  const which = index % parts.length;
  const bytes = Buffer.from(parts[which] ?? '', 'base64url');
  if (bytes.length === 0) return token + 'A';
  bytes[Math.floor(index / parts.length) % bytes.length]! ^= 1 << bit;
  parts[which] = bytes.toString('base64url');
  return parts.join('.');
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * The same bytes in a non-canonical encoding: the last character of the last segment with one of
 * its unused bits set (base64 decoders ignore them). Unchanged when there are no unused bits.
 */
export function nonCanonicalTail(token: string): string {
  const cut = token.lastIndexOf('.') + 1 || (token.startsWith('rt_') ? 3 : 0);
  const segment = token.slice(cut);
  const unusedBits = (segment.length * 6) % 8;
  const last = segment.at(-1);
  if (unusedBits === 0 || last === undefined) return token;
  const value = ALPHABET.indexOf(last);
  if (value < 0) return token;
  return token.slice(0, -1) + ALPHABET[value | (1 << (unusedBits - 1))];
}

/** Mutations of valid tokens (never the valid token itself: the caller filters equality). */
export function mutated(valid: string[]): fc.Arbitrary<string> {
  const token = fc.constantFrom(...valid);
  return fc.oneof(
    fc.tuple(token, fc.nat()).map(([t, n]) => t.slice(0, n % t.length)),
    fc.tuple(token, fc.nat(), fc.integer({ min: 0, max: 7 })).map(([t, i, b]) => flipChar(t, i, b)),
    fc
      .tuple(token, fc.nat(), fc.integer({ min: 0, max: 7 }))
      .map(([t, i, b]) => flipDecoded(t, i, b)),
    fc
      .tuple(
        token,
        fc.constantFrom('=', '==', ' ', '\t', '\u0000', '.', '%00', 'A', '\u200b', '\uFEFF'),
      )
      .map(([t, s]) => t + s),
    fc.tuple(token, fc.constantFrom(' ', '\u00a0', 'rt_', 'Bearer ', '"')).map(([t, p]) => p + t),
    token.map(nonCanonicalTail),
    token.map((t) => t.toUpperCase()),
    token.map((t) => t.replace(/-/g, '+').replace(/_/g, '/')),
    token.map((t) => t.split('.').reverse().join('.')),
    fc
      .tuple(token, token)
      .map(([a, b]) => a.slice(0, Math.floor(a.length / 2)) + b.slice(Math.floor(b.length / 2))),
  );
}

/** Strings of every kind: random, unicode, base64-looking, very long. */
export function garbage(): fc.Arbitrary<string> {
  return fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.string({ unit: 'grapheme', maxLength: 80 }),
    fc.base64String({ maxLength: 200 }),
    fc.stringMatching(/^rt_[A-Za-z0-9_-]{60,80}$/),
    fc.stringMatching(/^[A-Za-z0-9_-]{10,40}\.[A-Za-z0-9_-]{10,80}\.[A-Za-z0-9_-]{0,60}$/),
    fc.constantFrom(
      '',
      'null',
      'undefined',
      '[]',
      '{}',
      '0',
      'NaN',
      '__proto__',
      'constructor',
      '%',
      '%%',
      '\\',
      '$where',
      '{"$ne":null}',
    ),
    fc.integer({ min: 1_000, max: 20_000 }).map((n) => 'A'.repeat(n)),
  );
}
