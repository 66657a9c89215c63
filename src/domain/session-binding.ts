/**
 * Sessions bound to a key the client holds (docs/architecture.md, "Bound sessions"): the record's
 * `binding` names the method and the RFC 7638 thumbprint (`jkt`) of the client's public key. A
 * bound session's refresh token is worth nothing without the private key. Pure: no I/O.
 *
 * The rules here: a session that is bound stays bound, and a binding is never replaced by another
 * key; an unbound session is bound by its first refresh (or its login) that carries a proof.
 */
import { InvalidDpopProofError, InvalidRequestError } from './errors';

/** How a session is bound: DPoP (RFC 9449) proofs, or Chrome's Device Bound Session Credentials. */
export type BindingMethod = 'dpop' | 'dbsc';

/** A public JWK as the record keeps it (members are strings: kty, crv, x, y, n, e). */
export type PublicJwk = Readonly<Record<string, string>>;

/** A session bound by DPoP: every proof carries its key, so the thumbprint is enough. */
export interface DpopBinding {
  method: 'dpop';
  /** RFC 7638 SHA-256 thumbprint of the public key, base64url (43 characters). */
  jkt: string;
}

/**
 * A session bound by DBSC (Chrome's Device Bound Session Credentials). A refresh proof carries no
 * key, so the public key itself is kept. `boundUntil` is the bound lifetime: a refresh without a
 * proof (`POST /token` with the cookie) may rotate until then but never moves it; only a refresh
 * by proof at the DBSC refresh endpoint does.
 */
export interface DbscBinding {
  method: 'dbsc';
  jkt: string;
  jwk: PublicJwk;
  boundUntil: Date;
}

/** A device key (DBSC) as the HTTP adapter proved it: its RFC 7638 thumbprint and public JWK. */
export interface DeviceKey {
  jkt: string;
  jwk: PublicJwk;
}

/** What the record keeps of a bound session's key. */
export type SessionBinding = DpopBinding | DbscBinding;

/** A key proven by the request (a DPoP proof verified by the HTTP adapter). */
export interface ProvenKey {
  /** RFC 7638 SHA-256 thumbprint of the proof's public key, base64url. */
  jkt: string;
}

/** A thumbprint as RFC 7638 gives it with SHA-256: 32 bytes in unpadded base64url. */
const JKT = /^[A-Za-z0-9_-]{43}$/;

/** Whether `value` has the shape of a SHA-256 JWK thumbprint. */
export function isThumbprint(value: unknown): value is string {
  return typeof value === 'string' && JKT.test(value);
}

/**
 * What a proven key (or its absence) means for a record's binding:
 * - `bind`: the session is unbound and the request proved a key: the rotation binds it;
 * - `bearer`: unbound, and no proof: a bearer session as before;
 * - `match`: bound to the proven key;
 * - `missing`: bound (by DPoP), but no proof came;
 * - `mismatch`: bound, and the proof is by another key (or the session is bound another way);
 * - `lapsed`: bound by DBSC, no DPoP proof, and the bound lifetime is over at `now`: only a
 *   refresh by proof at the DBSC endpoint brings it back.
 *
 * A DBSC session refreshed without a proof (`POST /token` with its cookie) is a `match` while
 * `now` is before `boundUntil`; a DPoP proof never stands in for its key.
 */
export type BindingVerdict = 'bind' | 'bearer' | 'match' | 'missing' | 'mismatch' | 'lapsed';

export function judgeBinding(
  binding: SessionBinding | null,
  proven: ProvenKey | undefined,
  now: Date,
): BindingVerdict {
  if (binding === null) return proven === undefined ? 'bearer' : 'bind';
  if (binding.method === 'dbsc') {
    if (proven !== undefined) return 'mismatch';
    return binding.boundUntil.getTime() > now.getTime() ? 'match' : 'lapsed';
  }
  if (proven === undefined) return 'missing';
  return binding.jkt === proven.jkt ? 'match' : 'mismatch';
}

/** The binding a session has after a request with `proven` that passed {@link judgeBinding}. */
export function bindingAfter(
  binding: SessionBinding | null,
  proven: ProvenKey | undefined,
): SessionBinding | null {
  return binding ?? (proven === undefined ? null : { method: 'dpop', jkt: proven.jkt });
}

/**
 * Refuses a request on a bound session without a proof by its key (`InvalidDpopProofError`: the
 * caller changes nothing, and the session is never revoked for it: a missing proof is no theft).
 * Otherwise returns the verdict, so the caller can tell a `lapsed` DBSC session without judging
 * again.
 */
export function assertProvenFor(
  binding: SessionBinding | null,
  proven: ProvenKey | undefined,
  now: Date,
): Exclude<BindingVerdict, 'missing' | 'mismatch'> {
  const verdict = judgeBinding(binding, proven, now);
  if (verdict === 'missing')
    throw new InvalidDpopProofError(
      'this session is bound to a key: send a DPoP proof signed with it',
    );
  if (verdict === 'mismatch')
    throw new InvalidDpopProofError(
      'the DPoP proof is signed with another key than the one this session is bound to',
    );
  return verdict;
}

/**
 * How much longer a DBSC session's bound lifetime runs on the server than its cookie in the
 * browser: the cookie (Max-Age, so the browser's own clock does not matter) is gone by the time a
 * request sent just before its end arrives, and the browser then refreshes by proof instead of
 * presenting a cookie the server has just stopped accepting.
 */
export const BOUND_LEEWAY_MS = 5_000;

/** The `boundUntil` of a DBSC session bound or refreshed by proof at `now` for `boundTtlMs`. */
export function boundUntilFrom(now: Date, boundTtlMs: number): Date {
  return new Date(now.getTime() + boundTtlMs + BOUND_LEEWAY_MS);
}

/**
 * When a session's refresh credential stops working: its idle expiry, or for a DBSC session the
 * earlier of that and its bound lifetime, less {@link BOUND_LEEWAY_MS} (the refresh cookie is given
 * this expiry).
 */
export function credentialExpiry(expiresAt: Date, binding: SessionBinding | null): Date {
  if (binding?.method !== 'dbsc') return expiresAt;
  const cookieEnd = binding.boundUntil.getTime() - BOUND_LEEWAY_MS;
  return cookieEnd < expiresAt.getTime() ? new Date(cookieEnd) : expiresAt;
}

/** A proven key as the HTTP adapter hands it, checked: a malformed one is its bug, never stored. */
export function checkedProvenKey(proven: ProvenKey | undefined): ProvenKey | undefined {
  if (proven !== undefined && !isThumbprint((proven as Partial<ProvenKey> | null)?.jkt))
    throw new InvalidRequestError('a proven key must carry an RFC 7638 SHA-256 thumbprint (jkt)');
  return proven;
}
