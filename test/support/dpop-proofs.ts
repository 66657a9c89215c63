/**
 * Hand-made DPoP proofs (RFC 9449 §4.2) for tests, signed with jose: a client key per algorithm,
 * a proof with any claim or header changed, and the values a server derives from them.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  SignJWT,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  type CryptoKey,
  type JWK,
} from 'jose';
import type { DPoPAlgorithm } from '../../src/adapters/express';

export interface ProofKey {
  alg: DPoPAlgorithm;
  privateKey: CryptoKey;
  publicJwk: JWK;
  privateJwk: JWK;
  /** RFC 7638 SHA-256 thumbprint of the public key. */
  jkt: string;
}

/** A fresh client key pair for `alg`. */
export async function proofKey(alg: DPoPAlgorithm = 'ES256'): Promise<ProofKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  return {
    alg,
    privateKey,
    publicJwk,
    privateJwk: await exportJWK(privateKey),
    jkt: await calculateJwkThumbprint(publicJwk, 'sha256'),
  };
}

/** `ath`: base64url SHA-256 of an access token. */
export function ath(accessToken: string): string {
  return createHash('sha256').update(accessToken).digest('base64url');
}

export interface ProofParts {
  /** Claims: merged over `htm`, `htu`, `iat` (now) and a random `jti`; `undefined` removes one. */
  claims?: Record<string, unknown>;
  /** Header parameters: merged over `alg`, `typ: dpop+jwt` and the public `jwk`. */
  header?: Record<string, unknown>;
  /** Seconds since the epoch for the default `iat`. Default now. */
  now?: number;
}

function defined(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined));
}

/** A proof for `POST url` by `key`, with `parts` changing what a test needs changed. */
export async function makeProof(
  key: ProofKey,
  url: string,
  parts: ProofParts = {},
): Promise<string> {
  const now = parts.now ?? Math.floor(Date.now() / 1000);
  const claims = defined({
    htm: 'POST',
    htu: url,
    iat: now,
    jti: randomBytes(16).toString('base64url'),
    ...parts.claims,
  });
  const header = defined({ alg: key.alg, typ: 'dpop+jwt', jwk: key.publicJwk, ...parts.header });
  return new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(key.privateKey);
}

/** A JWS with any header and payload and a signature of junk bytes (for `none`, unknown algs). */
export function unsignedProof(header: object, claims: object, signature = 'AAAA'): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part(header)}.${part(claims)}.${signature}`;
}
