import type { ErrorRequestHandler, Request, Response } from 'express';
import {
  isRefreshRotationError,
  type RefreshRotationError,
  type RefreshRotationErrorCode,
} from '../../domain/errors';
import type { AdapterLogger } from './types';

/** The JSON body of every error answer: RFC 6749 §5.2 / RFC 6750 §3.1 shape. */
export interface HttpErrorBody {
  error: string;
  error_description: string;
}

/** How one error becomes an HTTP answer. */
export interface HttpError {
  status: number;
  body: HttpErrorBody;
  headers: Record<string, string>;
  /** How the error is logged: `error` for 5xx (with details), `warn` for 503, none for client errors. */
  log: 'error' | 'warn' | null;
}

/** Seconds a client should wait before retrying when the store is down (`Retry-After`). */
export const DEFAULT_RETRY_AFTER_SECONDS = 5;

/** The DPoP algorithms a challenge names when the resource did not say (RFC 9449 §7.1 `algs`). */
export const DEFAULT_DPOP_CHALLENGE_ALGORITHMS: readonly string[] = Object.freeze([
  'ES256',
  'EdDSA',
  'RS256',
  'PS256',
]);

/**
 * Where an error is answered, for the codes whose answer depends on it. The default is the token
 * endpoint: DPoP errors are then a 400 with an OAuth error body (RFC 9449 §5). At a protected
 * resource they are a 401 with a `WWW-Authenticate: DPoP` challenge (§7.1).
 */
export interface HttpErrorContext {
  /** `'token'` (default): a token endpoint. `'resource'`: a route guarded by `authenticate`. */
  endpoint?: 'token' | 'resource' | undefined;
  /**
   * The scheme of an `invalid_token` challenge at a resource: `'DPoP'` when the request used it
   * or the access token is bound to a key, so the client learns it must prove that key. Default
   * `'Bearer'`.
   */
  challenge?: 'Bearer' | 'DPoP' | undefined;
  /** The algorithms a DPoP challenge lists. Default ES256, EdDSA, RS256, PS256. */
  dpopAlgorithms?: readonly string[] | undefined;
}

const GENERIC_SERVER_ERROR: HttpErrorBody = {
  error: 'server_error',
  error_description: 'The server could not complete the request.',
};

type Mapping = (
  error: RefreshRotationError,
  retryAfterSeconds: number,
  context: HttpErrorContext,
) => HttpError;

const clientError =
  (status: number, error: string, description: string | null): Mapping =>
  (cause) => ({
    status,
    // A null description means "the message is safe to show" (our own invalid_request texts).
    body: { error, error_description: description ?? cause.message },
    headers: {},
    log: null,
  });

const serverError: Mapping = () => ({
  status: 500,
  body: GENERIC_SERVER_ERROR,
  headers: {},
  log: 'error',
});

function dpopChallenge(error: string, context: HttpErrorContext): string {
  const algorithms = context.dpopAlgorithms ?? DEFAULT_DPOP_CHALLENGE_ALGORITHMS;
  return `DPoP error="${error}", algs="${algorithms.join(' ')}"`;
}

/** The fresh nonce a `use_dpop_nonce` error carries, if it is one (a plain base error has none). */
function nonceOf(error: RefreshRotationError): string | undefined {
  const { nonce } = error as RefreshRotationError & { nonce?: unknown };
  return typeof nonce === 'string' ? nonce : undefined;
}

/**
 * `invalid_dpop_proof` and `use_dpop_nonce`: the message is ours and safe to show (the verifier
 * never echoes the header). A 400 at the token endpoint (RFC 9449 §5); a 401 with a DPoP
 * challenge at a resource (§7.1). `use_dpop_nonce` carries the nonce to retry with (§8, §9).
 */
const dpopError =
  (error: 'invalid_dpop_proof' | 'use_dpop_nonce'): Mapping =>
  (cause, _retryAfterSeconds, context) => {
    const nonce = error === 'use_dpop_nonce' ? nonceOf(cause) : undefined;
    const headers: Record<string, string> = nonce === undefined ? {} : { 'DPoP-Nonce': nonce };
    const atResource = context.endpoint === 'resource';
    if (atResource) headers['WWW-Authenticate'] = dpopChallenge(error, context);
    return {
      status: atResource ? 401 : 400,
      body: { error, error_description: cause.message },
      headers,
      log: null,
    };
  };

/**
 * The one table from error code to HTTP answer. Every reason an `invalid_grant` can have (reuse,
 * forgery, unknown or revoked session, expiry, version) gets the same fixed description, so a
 * client, or an attacker, cannot tell them apart.
 */
const TABLE: Record<RefreshRotationErrorCode, Mapping> = {
  invalid_request: clientError(400, 'invalid_request', null),
  unsupported_grant_type: clientError(
    400,
    'unsupported_grant_type',
    'grant_type must be refresh_token.',
  ),
  invalid_grant: clientError(
    400,
    'invalid_grant',
    'The refresh token is invalid, expired or revoked.',
  ),
  malformed_token: clientError(
    400,
    'invalid_grant',
    'The refresh token is invalid, expired or revoked.',
  ),
  invalid_token: (_error, _retryAfterSeconds, context) => ({
    status: 401,
    body: { error: 'invalid_token', error_description: 'The access token is invalid or expired.' },
    headers: {
      'WWW-Authenticate':
        context.challenge === 'DPoP'
          ? dpopChallenge('invalid_token', context)
          : 'Bearer error="invalid_token"',
    },
    log: null,
  }),
  not_found: clientError(404, 'not_found', 'No such session.'),
  store_unavailable: (_error, retryAfterSeconds) => ({
    status: 503,
    body: {
      error: 'temporarily_unavailable',
      error_description: 'The token store is unavailable; retry later.',
    },
    headers: { 'Retry-After': String(retryAfterSeconds) },
    log: 'warn',
  }),
  conflict: serverError,
  invalid_options: serverError,
  invalid_dpop_proof: dpopError('invalid_dpop_proof'),
  use_dpop_nonce: dpopError('use_dpop_nonce'),
};

/**
 * A client error raised while reading the body: body-parser's typed errors (`entity.parse.failed`,
 * `entity.too.large`, `charset.unsupported`…) and the zlib errors it passes on for a broken
 * `Content-Encoding`, all marked by http-errors as safe to expose with a 4xx status.
 */
function bodyReadStatus(error: unknown): number | null {
  if (typeof error !== 'object' || error === null) return null;
  const { status, statusCode, expose } = error as {
    status?: unknown | undefined;
    statusCode?: unknown | undefined;
    expose?: unknown | undefined;
  };
  const code = typeof status === 'number' ? status : statusCode;
  return expose === true && typeof code === 'number' && code >= 400 && code < 500 ? code : null;
}

function bodyReadError(status: number): HttpError {
  if (status === 413) {
    return {
      status: 413,
      body: { error: 'invalid_request', error_description: 'The request body is too large.' },
      headers: {},
      log: null,
    };
  }
  return {
    status: 400,
    body: { error: 'invalid_request', error_description: 'The request body could not be read.' },
    headers: {},
    log: null,
  };
}

/**
 * Express's router decoding a path parameter that is not valid percent-encoding
 * (`/sessions/%`, `/sessions/%E0%A4%A`): a `URIError` it marks with status 400 but, unlike
 * http-errors, not with `expose`. A client's malformed URL, so a 400 and no error log.
 */
function isBadPathEncoding(error: unknown): boolean {
  return error instanceof URIError && (error as URIError & { status?: unknown }).status === 400;
}

const BAD_PATH_ENCODING: HttpError = {
  status: 400,
  body: {
    error: 'invalid_request',
    error_description: 'The request path is not valid percent-encoding.',
  },
  headers: {},
  log: null,
};

/**
 * Map any error to its HTTP answer: library errors through the table, body-reading failures to
 * `invalid_request` (413 when too large), a path that is not valid percent-encoding to
 * `invalid_request`, anything else to a generic 500 whose details go only to the log. `context`
 * says where the error is answered (DPoP errors: 400 at the token endpoint, the default; 401 with
 * a challenge at a resource).
 */
export function toHttpError(
  error: unknown,
  retryAfterSeconds: number = DEFAULT_RETRY_AFTER_SECONDS,
  context: HttpErrorContext = {},
): HttpError {
  if (isRefreshRotationError(error)) {
    const mapping = TABLE[error.code] ?? serverError;
    return mapping(error, retryAfterSeconds, context);
  }
  if (isBadPathEncoding(error)) return BAD_PATH_ENCODING;
  const readStatus = bodyReadStatus(error);
  if (readStatus !== null) return bodyReadError(readStatus);
  return { status: 500, body: GENERIC_SERVER_ERROR, headers: {}, log: 'error' };
}

/** `Cache-Control: no-store` and `Pragma: no-cache`: token answers and errors are never cached. */
export function setNoStore(res: Response): void {
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Pragma', 'no-cache');
}

/** The request's logger (pino-http's `req.log`) if any, else the configured one. */
export function loggerFor(req: Request, fallback: AdapterLogger): AdapterLogger {
  const candidate = (req as Request & { log?: unknown }).log;
  if (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof (candidate as AdapterLogger).error === 'function' &&
    typeof (candidate as AdapterLogger).warn === 'function'
  ) {
    return candidate as AdapterLogger;
  }
  return fallback;
}

/** What a log line may say about an error: its name, code and message, never request data. */
function describeForLog(error: unknown): object {
  if (isRefreshRotationError(error)) {
    return {
      err: { name: error.name, code: error.code, message: error.message, cause: causeOf(error) },
    };
  }
  return { err: error };
}

function causeOf(error: Error): unknown {
  return error.cause instanceof Error
    ? { name: error.cause.name, message: error.cause.message }
    : undefined;
}

/** Send the answer for `error` on `res` (no-store headers included), logging server-side failures. */
export function sendError(
  req: Request,
  res: Response,
  error: unknown,
  options: { logger: AdapterLogger; retryAfterSeconds?: number; context?: HttpErrorContext },
): void {
  const http = toHttpError(error, options.retryAfterSeconds, options.context);
  const logger = loggerFor(req, options.logger);
  if (http.log === 'error') logger.error(describeForLog(error), 'refresh-rotation: request failed');
  if (http.log === 'warn')
    logger.warn(describeForLog(error), 'refresh-rotation: store unavailable');
  if (res.headersSent) {
    res.end();
    return;
  }
  setNoStore(res);
  for (const [name, value] of Object.entries(http.headers)) res.setHeader(name, value);
  res.status(http.status).json(http.body);
}

/**
 * An Express error handler built on the same table, for apps that want their own routes (login,
 * `/me`) to answer library errors the way the router does.
 */
export function errorHandler(
  options: { logger?: AdapterLogger; retryAfterSeconds?: number } = {},
): ErrorRequestHandler {
  const logger = options.logger ?? console;
  return function refreshRotationErrorHandler(error, req, res, _next) {
    sendError(req, res, error, { logger, retryAfterSeconds: options.retryAfterSeconds });
  };
}
