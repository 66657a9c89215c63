/**
 * `AccessTokens` on `jsonwebtoken`: the algorithm is pinned on verify. `jsonwebtoken` 9 has no
 * EdDSA, so EdDSA is a small compact-JWS implementation on `node:crypto` with the same claim checks.
 * Keys arrive as `KeyObject`s (a string secret would cost jsonwebtoken a PEM parse attempt on every
 * call).
 */
import { randomUUID, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type {
  AccessTokenClaims,
  AccessTokens,
  AccessTokenSettings,
  AccessTokenSubject,
} from '../../domain/access-token';
import { isJkt } from '../../domain/access-token';
import { InvalidAccessTokenError, OptionsError } from '../../domain/errors';

function seconds(at: Date): number {
  return Math.floor(at.getTime() / 1000);
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Whether `token` is a JWS compact serialization in canonical base64url (RFC 7515 §2: no padding,
 * no other alphabet, unused trailing bits zero). Base64 decoders ignore the unused bits of the last
 * character, so without this check an RS256/ES256 token whose last character was changed in those
 * bits alone verified as the same token (found by test/reliability/fuzz.test.ts): one signature,
 * several accepted strings.
 */
function isCanonicalCompact(token: string): boolean {
  const parts = token.split('.');
  return (
    parts.length === 3 &&
    parts.every(
      (part) =>
        BASE64URL.test(part) && Buffer.from(part, 'base64url').toString('base64url') === part,
    )
  );
}

function invalid(message: string, cause?: unknown): InvalidAccessTokenError {
  return new InvalidAccessTokenError(message, cause === undefined ? undefined : { cause });
}

function asClaims(payload: unknown): AccessTokenClaims {
  const claims = payload as Partial<AccessTokenClaims> | null;
  const valid =
    typeof claims === 'object' &&
    claims !== null &&
    typeof claims.sub === 'string' &&
    typeof claims.sid === 'string' &&
    Number.isInteger(claims.ver) &&
    (claims.gv === undefined || Number.isInteger(claims.gv)) &&
    typeof claims.jti === 'string' &&
    typeof claims.iat === 'number' &&
    typeof claims.exp === 'number';
  if (!valid) throw invalid('access token lacks required claims');
  if (claims.cnf !== undefined && !isConfirmation(claims.cnf))
    throw invalid('access token cnf claim is not { jkt: <SHA-256 thumbprint> }');
  return claims as AccessTokenClaims;
}

/**
 * A `cnf` we can enforce: an object with a thumbprint-shaped `jkt`. Anything else (`x5t#S256`, a
 * `jwk`, junk) is refused rather than ignored, so a confirmation this library cannot check never
 * turns a bound token into a bearer one.
 */
function isConfirmation(cnf: unknown): cnf is { jkt: string } {
  return typeof cnf === 'object' && cnf !== null && isJkt((cnf as { jkt?: unknown }).jkt);
}

/** Signs and verifies access tokens with one validated key set, on `jsonwebtoken`. */
export class JwtAccessTokens implements AccessTokens {
  /** Lifetime of a new token, in whole seconds (the `expires_in` of a token response). */
  readonly expiresIn: number;

  constructor(private readonly settings: AccessTokenSettings) {
    this.expiresIn = Math.floor(settings.ttlMs / 1000);
    if (this.expiresIn < 1)
      throw new OptionsError(`accessToken.ttl must be at least 1s; got ${settings.ttlMs}ms`);
    this.assertKeyPairMatches();
  }

  /** A new access token for the session at `now`; bound (`cnf: { jkt }`) with `subject.jkt`. */
  sign(subject: AccessTokenSubject, now: Date): string {
    if (subject.jkt !== undefined && !isJkt(subject.jkt))
      throw new TypeError('jkt must be a base64url SHA-256 JWK thumbprint (43 characters)');
    const iat = seconds(now);
    const payload: AccessTokenClaims = {
      sub: subject.userId,
      sid: subject.sessionId,
      ver: subject.version,
      gv: subject.globalVersion,
      jti: randomUUID(),
      iat,
      exp: iat + this.expiresIn,
      iss: this.settings.issuer,
      aud: this.settings.audience,
      cnf: subject.jkt === undefined ? undefined : { jkt: subject.jkt },
    };
    if (this.settings.algorithm === 'EdDSA') return this.signEdDsa(payload);
    return jwt.sign(payload, this.settings.signingKey, { algorithm: this.settings.algorithm });
  }

  /**
   * The claims of a valid token at `now`. Throws `InvalidAccessTokenError` for a bad signature,
   * another algorithm than the configured one (pinned: no `none`, no HS/RS confusion), an expired
   * token, a wrong issuer or audience, or missing claims.
   */
  verify(token: string, now: Date): AccessTokenClaims {
    if (typeof token !== 'string' || token.length === 0) throw invalid('access token is missing');
    if (!isCanonicalCompact(token)) throw invalid('access token is malformed');
    if (this.settings.algorithm === 'EdDSA') return this.verifyEdDsa(token, now);
    let payload: unknown;
    try {
      payload = jwt.verify(token, this.settings.verificationKey, {
        algorithms: [this.settings.algorithm],
        clockTimestamp: seconds(now),
        issuer: this.settings.issuer,
        audience: this.settings.audience,
      });
    } catch (error) {
      throw invalid('access token is invalid or expired', error);
    }
    return asClaims(payload);
  }

  private signEdDsa(payload: AccessTokenClaims): string {
    const header = Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: 'JWT' })).toString('base64url');
    const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
    const input = `${header}.${body}`;
    return `${input}.${cryptoSign(null, Buffer.from(input), this.settings.signingKey).toString('base64url')}`;
  }

  private verifyEdDsa(token: string, now: Date): AccessTokenClaims {
    const parts = token.split('.');
    if (parts.length !== 3) throw invalid('access token is malformed');
    const [header, body, signature] = parts as [string, string, string];
    let decodedHeader: unknown;
    let payload: unknown;
    try {
      decodedHeader = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
      payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch (error) {
      throw invalid('access token is malformed', error);
    }
    if ((decodedHeader as { alg?: unknown } | null)?.alg !== 'EdDSA')
      throw invalid('access token algorithm is not allowed');
    const signed = cryptoVerify(
      null,
      Buffer.from(`${header}.${body}`),
      this.settings.verificationKey,
      Buffer.from(signature, 'base64url'),
    );
    if (!signed) throw invalid('access token signature is invalid');
    const claims = asClaims(payload);
    if (seconds(now) >= claims.exp) throw invalid('access token expired');
    // As jsonwebtoken does for the other algorithms: a present `nbf` must be a number and not in the future.
    const { nbf } = payload as { nbf?: unknown };
    if (nbf !== undefined && (typeof nbf !== 'number' || seconds(now) < nbf))
      throw invalid('access token is not yet valid');
    if (this.settings.issuer !== undefined && claims.iss !== this.settings.issuer)
      throw invalid('access token issuer is wrong');
    if (this.settings.audience !== undefined) {
      const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
      if (!audiences.includes(this.settings.audience))
        throw invalid('access token audience is wrong');
    }
    return claims;
  }

  /** A private key with the wrong public key would only fail at the first verify: fail at start instead. */
  private assertKeyPairMatches(): void {
    const now = new Date(86_400_000);
    const probe = this.sign({ userId: 'probe', sessionId: 'probe', version: 0 }, now);
    try {
      this.verify(probe, now);
    } catch {
      throw new OptionsError('accessToken.publicKey does not match accessToken.privateKey');
    }
  }
}
