/**
 * DPoP proof verification (RFC 9449 §4.3) on `jose`: the signature and the key import are
 * jose's, never hand-written JWS code; this file adds the DPoP rules around them (header count,
 * `typ`, the algorithm allow-list, a public `jwk` only, `htm`, `htu`, `iat`, single-use `jti`,
 * `ath`, the optional server nonce) and turns every refusal into an `InvalidDpopProofError` or
 * `UseDpopNonceError` whose message says why and never repeats what the header held.
 *
 * jose is loaded on the first verifier built, not with refresh-rotation/express: it is ES
 * modules only and costs about a hundred milliseconds to load, which an app without DPoP never
 * pays.
 */
import { createHash } from 'node:crypto';
import type { Request } from 'express';
import type * as Jose from 'jose';
import type { DPoPReplayCache } from '../../domain/dpop-replay-cache';
import { parseDuration, type Duration } from '../../domain/duration';
import {
  InvalidDpopProofError,
  isRefreshRotationError,
  OptionsError,
  StoreUnavailableError,
  UseDpopNonceError,
} from '../../domain/errors';
import { systemClock, type Clock } from '../../domain/refresh-token';
import { DPoPNonces, type DPoPNonceOptions } from './dpop-nonce';

export type { DPoPNonceOptions } from './dpop-nonce';

/** The proof algorithms this library accepts: asymmetric only, never `none` or `HS*`. */
export type DPoPAlgorithm = 'ES256' | 'EdDSA' | 'RS256' | 'PS256';

/** Every algorithm `algorithms` accepts, in the order challenges and metadata list them. */
export const DPOP_ALGORITHMS: readonly DPoPAlgorithm[] = Object.freeze([
  'ES256',
  'EdDSA',
  'RS256',
  'PS256',
]);

/** Options of {@link createDPoPVerifier}. */
export interface DPoPVerifierOptions {
  /**
   * Where each proof's `jti` is claimed, so a proof is accepted once: `MemoryDPoPReplayCache`
   * (refresh-rotation/memory) for one instance, `RedisDPoPReplayCache` (refresh-rotation/redis)
   * when several instances answer the same clients. Required.
   */
  replayCache: DPoPReplayCache;
  /** The accepted `alg` values, a subset of {@link DPOP_ALGORITHMS}. Default all four. */
  algorithms?: readonly DPoPAlgorithm[] | undefined;
  /**
   * How far a proof's `iat` may be from now, either way (client clocks drift). Default `'60s'`.
   * A `jti` is remembered for twice this window, so a proof cannot be replayed while any
   * instance would still accept its `iat`.
   */
  iatWindow?: Duration | undefined;
  /**
   * Require server nonces: a proof must carry the current (or previous) nonce, or it is refused
   * with `use_dpop_nonce` and the nonce to use; every answer carries a fresh `DPoP-Nonce`.
   * Default off.
   */
  nonce?: DPoPNonceOptions | undefined;
  /** Source of time for `iat` and nonces. Default the system clock. */
  clock?: Clock | undefined;
}

/** What a valid proof establishes. */
export interface DPoPProof {
  /** The RFC 7638 SHA-256 thumbprint of the proof's public key, base64url: what a session binds to. */
  jkt: string;
}

/** What one proof is checked against. */
export interface DPoPProofInput {
  /** The `DPoP` header's value. */
  proof: string;
  /** The request's method, e.g. `POST` (the proof's `htm`). */
  method: string;
  /** The public URL of the endpoint as the client addressed it (the proof's `htu`); query and fragment ignored. */
  url: string;
  /** At a protected resource: the access token the proof must hash into `ath`. */
  accessToken?: string | undefined;
}

/** A configured DPoP proof verifier: see {@link createDPoPVerifier}. */
export interface DPoPVerifier {
  /** The accepted algorithms (for challenges and `dpop_signing_alg_values_supported`). */
  readonly algorithms: readonly DPoPAlgorithm[];
  /**
   * Verify one proof. Resolves with its key's thumbprint; rejects with `InvalidDpopProofError`
   * (the message says which check failed), `UseDpopNonceError` (nonces on and the proof lacks
   * the current one) or `StoreUnavailableError` (the replay cache cannot answer). Never rejects
   * with anything else, whatever `proof` holds.
   */
  verify(input: DPoPProofInput): Promise<DPoPProof>;
  /**
   * The `DPoP` header of `req`, checked with {@link DPoPVerifier.verify} for `url`; `undefined`
   * when the request has none. Two or more `DPoP` headers are refused (RFC 9449 §4.3: exactly
   * one).
   */
  verifyRequest(
    req: Request,
    url: string,
    accessToken?: string | undefined,
  ): Promise<DPoPProof | undefined>;
  /** The nonce to send in `DPoP-Nonce` now, or `undefined` when nonces are off. */
  currentNonce(): string | undefined;
}

const DEFAULT_IAT_WINDOW = '60s';
/**
 * Longest `DPoP` header read: an RSA-4096 proof is under 3 KB. Anything longer is refused before
 * any parsing, so a client cannot make the server decode megabytes of JSON.
 */
const MAX_PROOF_LENGTH = 8_192;
/** Longest `jti` accepted; it is hashed into the replay key, never stored as given. */
const MAX_JTI_LENGTH = 256;
/** Private JWK members (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2): a proof's key must be public. */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;
const PUBLIC_KEY_TYPES = new Set(['EC', 'OKP', 'RSA']);
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

let jose: Promise<typeof Jose> | undefined;
/** jose, loaded once, on first need (see the file's comment). */
function loadJose(): Promise<typeof Jose> {
  return (jose ??= import('jose'));
}

function refuse(message: string): InvalidDpopProofError {
  return new InvalidDpopProofError(message);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function base64urlSha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('base64url');
}

/** Canonical base64url in every part (RFC 7515 §2), so one signature has one accepted spelling. */
function isCanonicalCompact(proof: string): boolean {
  return (
    COMPACT_JWS.test(proof) &&
    proof.split('.').every((part) => Buffer.from(part, 'base64url').toString('base64url') === part)
  );
}

/**
 * An endpoint URL as RFC 9449 §4.3 compares it: scheme and host normalised (WHATWG URL parsing
 * lower-cases them, drops a default port, resolves dot segments), without query or fragment.
 * `null` when `value` is not an absolute http(s) URL.
 */
export function normalizeHtu(value: unknown): string | null {
  if (typeof value !== 'string' || value.length > MAX_PROOF_LENGTH) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
  url.search = '';
  url.hash = '';
  return url.href;
}

/**
 * A configured public URL (an endpoint's or an origin): absolute, `https` (or `http` on a
 * loopback host, for development), no query or fragment. Returns it normalised.
 */
export function publicUrlOption(value: unknown, name: string, kind: 'url' | 'origin'): string {
  const example =
    kind === 'origin' ? 'https://api.example.com' : 'https://api.example.com/auth/token';
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw new OptionsError(
      `${name} must be the absolute public ${kind === 'origin' ? 'origin' : 'URL'} clients use, such as '${example}'; got ${JSON.stringify(value)}`,
    );
  }
  const secure =
    url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.has(url.hostname));
  const shapeOk =
    url.search === '' &&
    url.hash === '' &&
    !String(value).includes('#') &&
    url.username === '' &&
    url.password === '' &&
    (kind === 'url' || url.pathname === '/');
  if (typeof value !== 'string' || !secure || !shapeOk) {
    throw new OptionsError(
      `${name} must be an https ${kind === 'origin' ? 'origin without a path' : 'URL'} without query or fragment (http only for localhost), such as '${example}'; got ${JSON.stringify(value)}`,
    );
  }
  return kind === 'origin' ? url.origin : url.href;
}

/**
 * The public URL of `req` on `origin`: the origin plus the request's own path, query dropped.
 * Refuses a path that URL parsing would change (dot segments, an absolute-form target): the
 * proof's `htu` must name the route this request actually reached, not one it normalises to.
 */
export function requestUrl(req: Request, origin: string): string {
  const target = req.originalUrl ?? req.url;
  const path = target.split(/[?#]/, 1)[0] ?? '';
  const url = path.startsWith('/') ? normalizeHtu(`${origin}${path}`) : null;
  if (url === null || new URL(url).pathname !== path)
    throw refuse('the request path must be in normal form (no dot segments) for a DPoP proof');
  return url;
}

/** The one `DPoP` header of `req`, `undefined` when absent. */
function dpopHeader(req: Request): string | undefined {
  // Node joins repeated headers with ", " in req.headers, which would hide a second proof (or
  // turn two into one invalid one); the distinct view keeps each header apart.
  const values = req.headersDistinct.dpop;
  if (values === undefined || values.length === 0) return undefined;
  if (values.length > 1)
    throw refuse('exactly one DPoP header is allowed; the request has several');
  return values[0];
}

function resolveAlgorithms(value: unknown, name: string): readonly DPoPAlgorithm[] {
  if (value === undefined) return DPOP_ALGORITHMS;
  const list = Array.isArray(value) ? (value as unknown[]) : null;
  const unknown = list?.filter((alg) => !DPOP_ALGORITHMS.includes(alg as DPoPAlgorithm)) ?? [];
  if (list === null || list.length === 0 || unknown.length > 0) {
    throw new OptionsError(
      `${name}.algorithms must be a non-empty list drawn from ${DPOP_ALGORITHMS.join(', ')} (asymmetric only; never none or HS*); got ${JSON.stringify(value)}`,
    );
  }
  return Object.freeze(DPOP_ALGORITHMS.filter((alg) => list.includes(alg)));
}

function resolveReplayCache(value: unknown, name: string): DPoPReplayCache {
  if (typeof (value as DPoPReplayCache | null)?.claim !== 'function') {
    throw new OptionsError(
      `${name}.replayCache is required: new MemoryDPoPReplayCache() (refresh-rotation/memory) for one instance, new RedisDPoPReplayCache({ connection }) (refresh-rotation/redis) for several`,
    );
  }
  return value as DPoPReplayCache;
}

/** The settings every check reads, validated once. */
interface Settings {
  algorithms: readonly DPoPAlgorithm[];
  iatWindowMs: number;
  replayCache: DPoPReplayCache;
  nonces: DPoPNonces | null;
  clock: Clock;
}

/** The protected header's DPoP rules, before any key is imported. Returns the header's `jwk`. */
function checkHeader(header: Jose.ProtectedHeaderParameters, settings: Settings): Jose.JWK {
  if (header.typ !== 'dpop+jwt') throw refuse('the DPoP proof typ must be dpop+jwt');
  if (typeof header.alg !== 'string' || !settings.algorithms.includes(header.alg as DPoPAlgorithm))
    throw refuse(`the DPoP proof alg must be one of ${settings.algorithms.join(', ')}`);
  const { jwk } = header;
  if (!isObject(jwk)) throw refuse('the DPoP proof header must carry the public key as jwk');
  // A private key in the header would be a client bug that leaks its key; refusing it (rather than
  // using its public half) makes that bug visible instead of silently binding to a leaked key.
  if (PRIVATE_JWK_MEMBERS.some((member) => member in jwk))
    throw refuse('the DPoP proof jwk must be a public key (no private members)');
  if (typeof jwk.kty !== 'string' || !PUBLIC_KEY_TYPES.has(jwk.kty))
    throw refuse('the DPoP proof jwk must be an EC, OKP or RSA public key');
  return jwk;
}

/** What jose said, as a refusal that names the failed check and nothing from the proof. */
function joseRefusal(error: unknown): InvalidDpopProofError {
  const { code, claim, message } = (error ?? {}) as {
    code?: unknown;
    claim?: unknown;
    message?: unknown;
  };
  switch (code) {
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return refuse('the DPoP proof signature does not verify with its jwk');
    case 'ERR_JWT_EXPIRED':
      return refuse('the DPoP proof has expired (exp)');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      // jose names one of the registered claims it checks (iat, nbf...); nothing of the proof's.
      const named = typeof claim === 'string' && /^[a-z]{2,4}$/.test(claim) ? ` ${claim}` : '';
      return refuse(`the DPoP proof claim${named} is invalid`);
    }
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return refuse('the DPoP proof alg is not allowed');
    case 'ERR_JWK_INVALID':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return refuse('the DPoP proof jwk is not a usable public key for its alg');
    case 'ERR_JWS_INVALID':
      // jose's own texts (never the proof's): the embedded key could not be imported.
      if (typeof message === 'string' && /jwk|json web key/i.test(message))
        return refuse('the DPoP proof jwk is not a usable public key for its alg');
      return refuse('the DPoP proof is not a valid signed JWT');
    default:
      return refuse('the DPoP proof is not a valid signed JWT');
  }
}

/** The payload's DPoP claims, in the order RFC 9449 §4.3 lists them. */
function checkClaims(
  payload: Jose.JWTPayload,
  input: DPoPProofInput,
  expectedUrl: string,
  settings: Settings,
): { jti: string; iat: number } {
  const { jti, htm, htu, iat } = payload;
  if (typeof jti !== 'string' || jti.length === 0) throw refuse('the DPoP proof must carry a jti');
  if (jti.length > MAX_JTI_LENGTH)
    throw refuse(`the DPoP proof jti must be at most ${MAX_JTI_LENGTH} characters`);
  if (htm !== input.method) throw refuse(`the DPoP proof htm must be ${input.method}`);
  if (normalizeHtu(htu) !== expectedUrl) throw refuse(`the DPoP proof htu must be ${expectedUrl}`);
  if (typeof iat !== 'number' || !Number.isFinite(iat))
    throw refuse('the DPoP proof must carry iat');
  const skewMs = iat * 1000 - settings.clock.now().getTime();
  const window = `${settings.iatWindowMs / 1000}s`;
  if (skewMs < -settings.iatWindowMs)
    throw refuse(`the DPoP proof is too old (iat more than ${window} ago)`);
  if (skewMs > settings.iatWindowMs)
    throw refuse(`the DPoP proof is from the future (iat more than ${window} ahead)`);
  if (settings.nonces && !settings.nonces.accepts(payload.nonce))
    throw new UseDpopNonceError(settings.nonces.current());
  if (input.accessToken !== undefined && payload.ath !== base64urlSha256(input.accessToken))
    throw refuse('the DPoP proof ath must be the SHA-256 of the access token it is sent with');
  return { jti, iat };
}

/**
 * Claim the proof once. The key is a SHA-256 of the key thumbprint and `jti`, so no text of the
 * client's choosing becomes a store key, and two clients' `jti`s never collide. Claimed last,
 * after every other check, so an invalid proof cannot use up a `jti`.
 */
async function claimOnce(jkt: string, jti: string, settings: Settings): Promise<void> {
  let first: boolean;
  try {
    first = await settings.replayCache.claim(
      base64urlSha256(`${jkt}.${jti}`),
      2 * settings.iatWindowMs + 1_000,
    );
  } catch (error) {
    if (isRefreshRotationError(error)) throw error;
    throw new StoreUnavailableError('the DPoP replay cache is unavailable', { cause: error });
  }
  if (!first) throw refuse('the DPoP proof was already used (its jti was seen before)');
}

async function verifyProof(input: DPoPProofInput, settings: Settings): Promise<DPoPProof> {
  const { proof } = input;
  if (typeof proof !== 'string' || proof.length === 0) throw refuse('the DPoP header is empty');
  if (proof.length > MAX_PROOF_LENGTH)
    throw refuse(`the DPoP proof must be at most ${MAX_PROOF_LENGTH} characters`);
  if (!isCanonicalCompact(proof))
    throw refuse('the DPoP proof must be a JWS in compact serialization');
  const expectedUrl = normalizeHtu(input.url);
  if (expectedUrl === null) throw new TypeError('url must be an absolute http(s) URL');
  const { decodeProtectedHeader, jwtVerify, EmbeddedJWK, calculateJwkThumbprint } =
    await loadJose();
  let header: Jose.ProtectedHeaderParameters;
  try {
    header = decodeProtectedHeader(proof);
  } catch {
    throw refuse('the DPoP proof header is not valid JSON');
  }
  const jwk = checkHeader(header, settings);
  let payload: Jose.JWTPayload;
  let jkt: string;
  try {
    // The thumbprint first: it checks the key's required members, with a clearer refusal.
    jkt = await calculateJwkThumbprint(jwk, 'sha256');
    ({ payload } = await jwtVerify(proof, EmbeddedJWK, {
      algorithms: [...settings.algorithms],
      typ: 'dpop+jwt',
      currentDate: settings.clock.now(),
    }));
  } catch (error) {
    throw joseRefusal(error);
  }
  const { jti } = checkClaims(payload, input, expectedUrl, settings);
  await claimOnce(jkt, jti, settings);
  return { jkt };
}

/**
 * Build a DPoP proof verifier (RFC 9449 §4.3). Each proof must be: one compact JWS, `typ`
 * `dpop+jwt`, an `alg` from `algorithms`, signed by the public `jwk` in its header, for this
 * request's method (`htm`) and public URL (`htu`, compared without query and fragment), issued
 * within `iatWindow` of now, with a `jti` not seen before (claimed in `replayCache`), with the
 * access token's `ath` at a resource, and with the current nonce when nonces are on. Throws
 * `OptionsError` for invalid options, naming them under `name` (default `dpop`).
 *
 * The router (`createRefreshRouter({ dpop })`) and `authenticate({ dpop })` build their own; use
 * this one for a route of your own.
 *
 * @example
 * const dpop = createDPoPVerifier({ replayCache: new MemoryDPoPReplayCache() });
 * const proof = await dpop.verifyRequest(req, 'https://api.example.com/auth/login');
 * // proof?.jkt: the key to bind the new session to
 */
export function createDPoPVerifier(options: DPoPVerifierOptions, name = 'dpop'): DPoPVerifier {
  if (!isObject(options)) throw new OptionsError(`${name} must be an object of DPoP options`);
  const clock = options.clock ?? systemClock;
  const iatWindowMs = parseDuration(options.iatWindow ?? DEFAULT_IAT_WINDOW, `${name}.iatWindow`);
  if (iatWindowMs < 1_000 || iatWindowMs > 600_000)
    throw new OptionsError(`${name}.iatWindow must be between 1s and 10m; got ${iatWindowMs}ms`);
  const settings: Settings = {
    algorithms: resolveAlgorithms(options.algorithms, name),
    iatWindowMs,
    replayCache: resolveReplayCache(options.replayCache, name),
    nonces: options.nonce === undefined ? null : new DPoPNonces(options.nonce, clock, name),
    clock,
  };
  // Start loading now, so the first proof does not wait for it; a failure surfaces on that proof.
  loadJose().catch(() => undefined);
  const verify = (input: DPoPProofInput) => verifyProof(input, settings);
  return {
    algorithms: settings.algorithms,
    verify,
    async verifyRequest(req, url, accessToken) {
      const proof = dpopHeader(req);
      if (proof === undefined) return undefined;
      return verify({ proof, method: req.method, url, accessToken });
    },
    currentNonce: () => settings.nonces?.current(),
  };
}
