/**
 * Access tokens (docs/architecture.md, "A refresh", step 5): short-lived JWTs with `sub`, `sid`,
 * `ver`, `gv`, `jti`, `iat`, `exp` and optional `iss`/`aud`, the algorithm pinned on verify. Here:
 * the claims, the algorithms, the key material validated once (into `KeyObject`s), and the port the
 * service signs and verifies through. The JWT implementation is an adapter
 * (src/adapters/jsonwebtoken).
 */
import { createPrivateKey, createPublicKey, createSecretKey, KeyObject } from 'node:crypto';
import { OptionsError } from './errors';

/** Access-token algorithms this library signs and verifies. */
export type AccessTokenAlgorithm = 'HS256' | 'HS384' | 'HS512' | 'RS256' | 'ES256' | 'EdDSA';

/** Every value `accessToken.algorithm` accepts (for an app's own configuration checks). */
export const ACCESS_TOKEN_ALGORITHMS: readonly AccessTokenAlgorithm[] = Object.freeze([
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'ES256',
  'EdDSA',
]);

/** Minimum HMAC secret length, in bytes. */
export const MIN_ACCESS_SECRET_BYTES = 32;

/** The claims of a verified access token. */
export interface AccessTokenClaims {
  /** User id. */
  sub: string;
  /** Session id. */
  sid: string;
  /** The session's token version (compare with the user's minimum for instant cut-off). */
  ver: number;
  /**
   * The global minimum version the session was issued at (compare with the global minimum after a
   * breach rotation). Absent from tokens signed before it existed: read as 0.
   */
  gv?: number | undefined;
  jti: string;
  iat: number;
  exp: number;
  iss?: string | undefined;
  aud?: string | string[] | undefined;
  /**
   * The key the token is bound to (RFC 9449 §6.1): the RFC 7638 SHA-256 thumbprint of the
   * client's DPoP public key, base64url. A bound token is accepted only with a DPoP proof by that
   * key, never as a bearer token.
   */
  cnf?: { jkt: string } | undefined;
}

/** Length of a base64url SHA-256 digest (RFC 7638 thumbprint with SHA-256): 43 characters. */
export const JKT_LENGTH = 43;

const JKT_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** Whether `value` has the shape of an RFC 7638 SHA-256 thumbprint in base64url. */
export function isJkt(value: unknown): value is string {
  return typeof value === 'string' && JKT_PATTERN.test(value);
}

/** Key material as given in the options. */
export interface AccessTokenKeyInput {
  algorithm?: AccessTokenAlgorithm | undefined;
  secret?: string | Buffer | KeyObject | undefined;
  privateKey?: string | KeyObject | undefined;
  publicKey?: string | KeyObject | undefined;
}

/** Validated key material. */
export interface AccessTokenKeys {
  algorithm: AccessTokenAlgorithm;
  signingKey: KeyObject;
  verificationKey: KeyObject;
}

/** Everything an `AccessTokens` implementation needs. */
export interface AccessTokenSettings extends AccessTokenKeys {
  ttlMs: number;
  issuer?: string | undefined;
  audience?: string | undefined;
}

function isHmac(algorithm: AccessTokenAlgorithm): boolean {
  return algorithm.startsWith('HS');
}

function secretKey(secret: unknown): KeyObject {
  if (secret instanceof KeyObject) {
    if (secret.type !== 'secret')
      throw new OptionsError('accessToken.secret must be a secret KeyObject (createSecretKey)');
    return secret;
  }
  if (typeof secret === 'string') return createSecretKey(Buffer.from(secret, 'utf8'));
  if (Buffer.isBuffer(secret)) return createSecretKey(Buffer.from(secret));
  throw new OptionsError(
    'accessToken.secret is required for HS* algorithms (a string, Buffer or secret KeyObject)',
  );
}

function asymmetricKey(key: unknown, kind: 'privateKey' | 'publicKey'): KeyObject {
  if (key instanceof KeyObject) {
    if (key.type !== (kind === 'privateKey' ? 'private' : 'public')) {
      throw new OptionsError(
        `accessToken.${kind} must be a ${kind === 'privateKey' ? 'private' : 'public'} KeyObject`,
      );
    }
    return key;
  }
  if (typeof key !== 'string')
    throw new OptionsError(`accessToken.${kind} must be a PEM string or a KeyObject`);
  try {
    return kind === 'privateKey' ? createPrivateKey(key) : createPublicKey(key);
  } catch (error) {
    throw new OptionsError(
      `accessToken.${kind} is not a valid PEM key: ${(error as Error).message}`,
    );
  }
}

function assertKeyFits(algorithm: AccessTokenAlgorithm, key: KeyObject): void {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  const fits =
    (algorithm === 'RS256' && type === 'rsa' && (details.modulusLength ?? 0) >= 2048) ||
    (algorithm === 'ES256' && type === 'ec' && details.namedCurve === 'prime256v1') ||
    (algorithm === 'EdDSA' && type === 'ed25519');
  if (!fits) {
    const wanted = {
      RS256: 'an RSA key of at least 2048 bits',
      ES256: 'a P-256 EC key',
      EdDSA: 'an Ed25519 key',
    };
    throw new OptionsError(
      `accessToken.algorithm ${algorithm} needs ${wanted[algorithm as keyof typeof wanted]}; got ${type ?? 'unknown'} key`,
    );
  }
}

/** Validates the algorithm and key material once; throws `OptionsError` with what to change. */
export function resolveAccessTokenKeys(input: AccessTokenKeyInput): AccessTokenKeys {
  const algorithm = input.algorithm ?? 'HS256';
  if (!ACCESS_TOKEN_ALGORITHMS.includes(algorithm)) {
    throw new OptionsError(
      `accessToken.algorithm must be one of ${ACCESS_TOKEN_ALGORITHMS.join(', ')}; got ${String(algorithm)}`,
    );
  }
  if (isHmac(algorithm)) {
    if (input.privateKey !== undefined || input.publicKey !== undefined) {
      throw new OptionsError(
        `accessToken.algorithm ${algorithm} takes accessToken.secret, not a key pair`,
      );
    }
    const key = secretKey(input.secret);
    const size = key.symmetricKeySize ?? 0;
    if (size < MIN_ACCESS_SECRET_BYTES) {
      throw new OptionsError(
        `accessToken.secret must be at least ${MIN_ACCESS_SECRET_BYTES} bytes; got ${size}`,
      );
    }
    return { algorithm, signingKey: key, verificationKey: key };
  }
  if (input.secret !== undefined) {
    throw new OptionsError(
      `accessToken.algorithm ${algorithm} takes accessToken.privateKey (and publicKey), not a secret`,
    );
  }
  const signingKey = asymmetricKey(input.privateKey, 'privateKey');
  const verificationKey =
    input.publicKey === undefined
      ? createPublicKey(signingKey)
      : asymmetricKey(input.publicKey, 'publicKey');
  assertKeyFits(algorithm, signingKey);
  assertKeyFits(algorithm, verificationKey);
  return { algorithm, signingKey, verificationKey };
}

/** Who the token is for: the subject of a new access token. */
export interface AccessTokenSubject {
  userId: string;
  sessionId: string;
  version: number;
  globalVersion?: number | undefined;
  /** The DPoP key thumbprint of a bound session: the token then carries `cnf: { jkt }`. */
  jkt?: string | undefined;
}

/**
 * The port: signs and verifies the access tokens of one validated key set. Implemented with
 * `jsonwebtoken` by `JwtAccessTokens` (src/adapters/jsonwebtoken).
 */
export interface AccessTokens {
  /** Lifetime of a new token, in whole seconds (the `expires_in` of a token response). */
  readonly expiresIn: number;
  /**
   * A new access token for the session at `now`; with `subject.jkt`, bound to that key
   * (`cnf: { jkt }`). Throws `TypeError` for a `jkt` that is not a SHA-256 thumbprint (a
   * programming error: the verifier only ever produces thumbprints).
   */
  sign(subject: AccessTokenSubject, now: Date): string;
  /**
   * The claims of a valid token at `now`. Throws `InvalidAccessTokenError` for a bad signature,
   * another algorithm than the configured one (pinned), an expired token, a wrong issuer or
   * audience, missing claims, or a `cnf` that is not `{ jkt: <thumbprint> }`.
   */
  verify(token: string, now: Date): AccessTokenClaims;
}
