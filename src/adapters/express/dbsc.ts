/**
 * Device Bound Session Credentials (DBSC, W3C webappsec-dbsc) on the cookie transport: the
 * registration header of a cookie login, stateless challenges, and the verification of the
 * browser's `dbsc+jwt` proofs on `jose` (never hand-written JWS code). The rules here: `typ`
 * `dbsc+jwt`, an allow-listed asymmetric `alg`, a public `jwk` in the registration proof, the
 * stored key for a refresh proof, `jti` a current challenge of this session (and, at refresh, of
 * its current generation), `authorization` the value given for this session. Every refusal is an
 * `InvalidRequestError` whose message says which check failed and never repeats the proof.
 */
import type { Request } from 'express';
import type * as Jose from 'jose';
import { parseDuration, type Duration } from '../../domain/duration';
import { InvalidRequestError, OptionsError } from '../../domain/errors';
import { systemClock, type Clock } from '../../domain/refresh-token';
import type { DeviceKey, PublicJwk } from '../../domain/session-binding';
import { sameText, SteppedHmac } from './stepped-hmac';

/** The proof algorithms DBSC browsers use (Chrome: ES256, RS256). */
export type DbscAlgorithm = 'ES256' | 'RS256';

const DBSC_ALGORITHMS: readonly DbscAlgorithm[] = Object.freeze(['ES256', 'RS256']);

/** The `dbsc` option of the cookie transport (`cookie: { dbsc }`). */
export interface DbscOptions {
  /**
   * At least 32 bytes (a string's UTF-8 bytes, or a Buffer), the same on every instance:
   * challenges and `authorization` values are HMACs with it, never stored.
   */
  secret: string | Buffer;
  /**
   * How long a bound refresh cookie lives: `POST /token` with it may rotate but never extends
   * this; only a refresh by proof at the DBSC refresh endpoint does. Default `'10m'`; at least
   * `'5m'` ({@link DBSC_MIN_BOUND_TTL_MS}).
   */
  boundTtl?: Duration | undefined;
  /** The accepted proof algorithms. Default both, `ES256` and `RS256`. */
  algorithms?: readonly DbscAlgorithm[] | undefined;
  /**
   * How long one challenge is handed out; a challenge is accepted in its own step and the next.
   * Default `'5m'`.
   */
  challengeStep?: Duration | undefined;
  /** Source of time for challenges. Default the system clock. */
  clock?: Clock | undefined;
}

/** The resolved settings and the checks. */
export interface Dbsc {
  readonly boundTtlMs: number;
  readonly algorithms: readonly DbscAlgorithm[];
  /** The challenge of `sessionId` now: at registration (`generation` null) or at a generation. */
  challenge(sessionId: string, generation: number | null): string;
  /** The `authorization` value of `sessionId`. */
  authorization(sessionId: string): string;
  /** Verify a registration proof for `sessionId`; the key it proves. */
  verifyRegistration(proof: unknown, sessionId: string): Promise<DeviceKey>;
  /**
   * Verify a refresh proof for `sessionId` at `generation` with the stored `key`. A proof signed
   * by that key whose `jti` is not a current challenge (of an older generation or time step)
   * throws {@link DbscStaleChallenge}: the browser is asked again, not refused.
   */
  verifyRefresh(
    proof: unknown,
    sessionId: string,
    generation: number,
    key: DeviceKey,
  ): Promise<void>;
}

/**
 * The shortest `boundTtl`, 5 minutes. Chromium refreshes a bound cookie proactively, by proof, on
 * any request in scope during its last 2 minutes, and signs at most 6 times per 9 minutes per
 * site. A cookie of 2 minutes is refreshed on every request (seen in Chromium 156), and runs out of
 * signatures within minutes, which leaves the page without a cookie: signed out. At 5 minutes an
 * active page refreshes every 3 minutes or more, 3 signatures per 9 minutes.
 */
export const DBSC_MIN_BOUND_TTL_MS = 5 * 60_000;
const MAX_PROOF_LENGTH = 8_192;
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;
/** The members of a public key kept in the record, per key type (RFC 7518 §6.2.1, §6.3.1). */
const PUBLIC_MEMBERS: Record<string, readonly string[]> = {
  EC: ['kty', 'crv', 'x', 'y'],
  RSA: ['kty', 'n', 'e'],
};
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

let jose: Promise<typeof Jose> | undefined;
function loadJose(): Promise<typeof Jose> {
  return (jose ??= import('jose'));
}

/**
 * A refresh proof by the session's own key over a challenge that is no longer current: a rotation
 * (a `POST /token` of the same cookie, or another refresh) came between the challenge and the
 * proof. The router answers it with a new challenge (403), as it answers a request without a
 * proof: refusing it would make Chromium end its device-bound session for good.
 */
export class DbscStaleChallenge extends InvalidRequestError {}

function refuse(message: string): InvalidRequestError {
  return new InvalidRequestError(message);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function resolveAlgorithms(value: unknown): readonly DbscAlgorithm[] {
  if (value === undefined) return DBSC_ALGORITHMS;
  const list = Array.isArray(value) ? (value as unknown[]) : null;
  if (
    list === null ||
    list.length === 0 ||
    list.some((alg) => !DBSC_ALGORITHMS.includes(alg as DbscAlgorithm))
  )
    throw new OptionsError(
      `cookie.dbsc.algorithms must be a non-empty list drawn from ${DBSC_ALGORITHMS.join(', ')}; got ${JSON.stringify(value)}`,
    );
  return Object.freeze(DBSC_ALGORITHMS.filter((alg) => list.includes(alg)));
}

/** The protected header and payload of a compact JWS, checked for shape before any key. */
async function decodeHeader(proof: unknown, algorithms: readonly DbscAlgorithm[]) {
  if (typeof proof !== 'string' || proof.length === 0)
    throw refuse('the Secure-Session-Response header is required');
  if (proof.length > MAX_PROOF_LENGTH || !COMPACT_JWS.test(proof))
    throw refuse('the DBSC proof must be a JWS in compact serialization');
  const { decodeProtectedHeader } = await loadJose();
  let header: Jose.ProtectedHeaderParameters;
  try {
    header = decodeProtectedHeader(proof);
  } catch {
    throw refuse('the DBSC proof header is not valid JSON');
  }
  if (header.typ !== 'dbsc+jwt') throw refuse('the DBSC proof typ must be dbsc+jwt');
  if (typeof header.alg !== 'string' || !algorithms.includes(header.alg as DbscAlgorithm))
    throw refuse(`the DBSC proof alg must be one of ${algorithms.join(', ')}`);
  return { proof, header, alg: header.alg as DbscAlgorithm };
}

/** The public members of a registration proof's `jwk`, or a refusal. */
function publicJwkOf(jwk: unknown): PublicJwk {
  if (!isObject(jwk)) throw refuse('the DBSC registration proof must carry its public key as jwk');
  if (PRIVATE_JWK_MEMBERS.some((member) => member in jwk))
    throw refuse('the DBSC proof jwk must be a public key (no private members)');
  const members = typeof jwk.kty === 'string' ? PUBLIC_MEMBERS[jwk.kty] : undefined;
  if (members === undefined) throw refuse('the DBSC proof jwk must be an EC or RSA public key');
  const kept: Record<string, string> = {};
  for (const member of members) {
    const value = jwk[member];
    if (typeof value !== 'string' || value.length === 0 || value.length > 1_024)
      throw refuse('the DBSC proof jwk is not a usable public key');
    kept[member] = value;
  }
  return kept;
}

function joseRefusal(error: unknown): InvalidRequestError {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED')
    return refuse('the DBSC proof signature does not verify with the key');
  if (code === 'ERR_JWK_INVALID' || code === 'ERR_JOSE_NOT_SUPPORTED')
    return refuse('the DBSC proof jwk is not a usable public key for its alg');
  return refuse('the DBSC proof is not a valid signed JWT');
}

/** Resolve the `cookie.dbsc` option once. */
export function createDbsc(options: DbscOptions): Dbsc {
  if (!isObject(options))
    throw new OptionsError('cookie.dbsc must be an object: { secret, boundTtl?, algorithms? }');
  const clock = options.clock ?? systemClock;
  const hmac = new SteppedHmac(
    { secret: options.secret, step: options.challengeStep ?? '5m' },
    { secret: 'cookie.dbsc.secret', step: 'cookie.dbsc.challengeStep' },
    clock,
  );
  const boundTtlMs = parseDuration(options.boundTtl ?? '10m', 'cookie.dbsc.boundTtl');
  if (boundTtlMs < DBSC_MIN_BOUND_TTL_MS)
    throw new OptionsError(
      `cookie.dbsc.boundTtl must be at least 5m (Chromium refreshes a cookie by proof on every request in its last 2 minutes, and signs at most 6 times per 9 minutes); got ${boundTtlMs}ms`,
    );
  const algorithms = resolveAlgorithms(options.algorithms);
  loadJose().catch(() => undefined);

  const challengeMessage = (sessionId: string, generation: number | null) => (step: number) =>
    `refresh-rotation DBSC challenge ${sessionId} ${generation ?? 'registration'} ${step}`;
  /** Whether `jti` is this session's challenge of the current or the previous step. */
  const acceptsChallenge = (jti: unknown, sessionId: string, generation: number | null) =>
    hmac.accepts(jti, challengeMessage(sessionId, generation));

  async function verifiedPayload(
    proof: string,
    jwk: PublicJwk,
    alg: DbscAlgorithm,
  ): Promise<Jose.JWTPayload> {
    const { jwtVerify, importJWK } = await loadJose();
    try {
      const { payload } = await jwtVerify(proof, await importJWK({ ...jwk }, alg), {
        algorithms: [alg],
        typ: 'dbsc+jwt',
        currentDate: clock.now(),
      });
      return payload;
    } catch (error) {
      throw joseRefusal(error);
    }
  }

  const authorization = (sessionId: string) =>
    hmac.of(`refresh-rotation DBSC authorization ${sessionId}`);

  return {
    boundTtlMs,
    algorithms,
    challenge: (sessionId, generation) =>
      hmac.of(challengeMessage(sessionId, generation)(hmac.step())),
    authorization,
    async verifyRegistration(proof, sessionId) {
      const decoded = await decodeHeader(proof, algorithms);
      const jwk = publicJwkOf(decoded.header.jwk);
      const payload = await verifiedPayload(decoded.proof, jwk, decoded.alg);
      if (!acceptsChallenge(payload.jti, sessionId, null))
        throw refuse('the DBSC proof jti must be a current challenge of this session');
      const given = payload.authorization;
      if (typeof given !== 'string' || !sameText(given, authorization(sessionId)))
        throw refuse('the DBSC proof authorization must be the value given for this session');
      const { calculateJwkThumbprint } = await loadJose();
      return { jkt: await calculateJwkThumbprint({ ...jwk }, 'sha256'), jwk };
    },
    async verifyRefresh(proof, sessionId, generation, key) {
      const decoded = await decodeHeader(proof, algorithms);
      const payload = await verifiedPayload(decoded.proof, key.jwk, decoded.alg);
      if (!acceptsChallenge(payload.jti, sessionId, generation))
        throw new DbscStaleChallenge(
          'the DBSC proof jti must be a current challenge of this session',
        );
    },
  };
}

/**
 * The DBSC endpoints are called by the browser itself, with the cookie and no CSRF header: only a
 * same-origin request is accepted (`Sec-Fetch-Site` `same-origin` when sent; an `Origin`, when
 * sent, of this host).
 */
export function assertSameOriginFetch(req: Request): void {
  const site = req.get('sec-fetch-site')?.toLowerCase();
  if (site !== undefined && site !== 'same-origin')
    throw refuse('DBSC requests are accepted from the same origin only');
  const origin = req.get('origin');
  if (origin === undefined) return;
  let host: string | null;
  try {
    host = new URL(origin).host;
  } catch {
    host = null;
  }
  if (host === null || host !== req.get('host'))
    throw refuse('DBSC requests are accepted from the same origin only');
}
