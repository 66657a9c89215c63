/**
 * Error classes with stable codes. Domain errors never mention HTTP: the Express adapter maps
 * `code` to a status in one table (src/adapters/express).
 */

/** Every code an error of this library can carry. `switch (err.code)` narrows on it. */
export type RefreshRotationErrorCode =
  | 'invalid_request'
  | 'invalid_grant'
  | 'unsupported_grant_type'
  | 'invalid_token'
  | 'store_unavailable'
  | 'not_found'
  | 'conflict'
  | 'invalid_options'
  | 'malformed_token'
  | 'invalid_dpop_proof'
  | 'use_dpop_nonce';

/** Why a grant was refused. Internal: logged and sent to the audit hook, never to the client. */
export type InvalidGrantReason =
  'malformed' | 'unknown_session' | 'forged' | 'revoked' | 'expired' | 'version' | 'reused';

/**
 * The brand every {@link RefreshRotationError} carries. `Symbol.for` gives one symbol per process,
 * so the brand matches whichever copy of the library created the error: the CommonJS and the ES
 * module build, two installed versions, or a bundler that duplicated a module.
 */
const ERROR_BRAND = Symbol.for('refresh-rotation.error');

/**
 * Base class of every error this library throws on purpose. Test for it with
 * {@link isRefreshRotationError} rather than `instanceof`, which fails when the error comes from
 * another copy of the library (the ESM build seen from CommonJS code, for example).
 */
export class RefreshRotationError extends Error {
  constructor(
    readonly code: RefreshRotationErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
    Object.defineProperty(this, ERROR_BRAND, { value: true });
  }
}

/**
 * True when `value` is an error thrown by this library (any subclass of
 * {@link RefreshRotationError}), whichever copy or module format of the package created it.
 * Narrows, so `switch (error.code)` works after it.
 */
export function isRefreshRotationError(value: unknown): value is RefreshRotationError {
  return (
    value instanceof Error &&
    (value as unknown as Record<symbol, unknown>)[ERROR_BRAND] === true &&
    typeof (value as { code?: unknown }).code === 'string'
  );
}

/** The request lacks a required parameter or is otherwise malformed (RFC 6749 §5.2). */
export class InvalidRequestError extends RefreshRotationError {
  declare readonly code: 'invalid_request';
  constructor(message: string) {
    super('invalid_request', message);
  }
}

/** The grant type is not `refresh_token` (RFC 6749 §5.2). */
export class UnsupportedGrantTypeError extends RefreshRotationError {
  declare readonly code: 'unsupported_grant_type';
  constructor(message = 'grant_type must be refresh_token') {
    super('unsupported_grant_type', message);
  }
}

/**
 * The refresh token is invalid, expired, revoked, reused or forged. `reason` says which, for logs
 * and audit only: clients must see the same answer whatever the reason.
 */
export class InvalidGrantError extends RefreshRotationError {
  declare readonly code: 'invalid_grant';
  constructor(readonly reason: InvalidGrantReason) {
    super('invalid_grant', `refresh token rejected (${reason})`);
  }
}

/** An access token failed verification (bad signature, expired, wrong issuer/audience, revoked). */
export class InvalidAccessTokenError extends RefreshRotationError {
  declare readonly code: 'invalid_token';
  constructor(message = 'access token is invalid or expired', options?: { cause?: unknown }) {
    super('invalid_token', message, options);
  }
}

/** The backing store (database, queue) cannot be reached; the caller may retry later. */
export class StoreUnavailableError extends RefreshRotationError {
  declare readonly code: 'store_unavailable';
  constructor(message = 'the token store is unavailable', options?: { cause?: unknown }) {
    super('store_unavailable', message, options);
  }
}

/** A repository method was given an id that has no record. */
export class NotFoundError extends RefreshRotationError {
  declare readonly code: 'not_found';
  constructor(message: string) {
    super('not_found', message);
  }
}

/** A write collided with an existing record (duplicate id, session id or token hash). */
export class ConflictError extends RefreshRotationError {
  declare readonly code: 'conflict';
  constructor(message: string, options?: { cause?: unknown }) {
    super('conflict', message, options);
  }
}

/** Options given to a factory are invalid; the message says what to change. */
export class OptionsError extends RefreshRotationError {
  declare readonly code: 'invalid_options';
  constructor(message: string) {
    super('invalid_options', message);
  }
}

/** The token codec could not parse a string as a refresh token. Never carries the token. */
export class MalformedTokenError extends RefreshRotationError {
  declare readonly code: 'malformed_token';
  constructor(message = 'not a refresh token of a known format') {
    super('malformed_token', message);
  }
}

/**
 * A DPoP proof (RFC 9449) was required and is missing, or is not valid for this request: not one
 * `DPoP` header, not a `dpop+jwt` signed with an allowed algorithm by the public key it carries,
 * for another method or URL, too old or too new, replayed, without the access token's `ath`, or by
 * another key than the one the session or access token is bound to. The message says which, and
 * never repeats what the header held. Thrown by the proof verifier (refresh-rotation/express) and
 * by the service for a bound session's refresh without a proof by its key.
 */
export class InvalidDpopProofError extends RefreshRotationError {
  declare readonly code: 'invalid_dpop_proof';
  constructor(message: string) {
    super('invalid_dpop_proof', message);
  }
}

/**
 * The DPoP proof lacks the server's current nonce (RFC 9449 §8, §9), or carries a stale one.
 * `nonce` is the fresh value the client must put in its next proof (the `DPoP-Nonce` header).
 */
export class UseDpopNonceError extends RefreshRotationError {
  declare readonly code: 'use_dpop_nonce';
  constructor(
    readonly nonce: string,
    message = 'The DPoP proof must carry the nonce of the DPoP-Nonce header; retry with a new proof.',
  ) {
    super('use_dpop_nonce', message);
  }
}
