/**
 * refresh-rotation/express: the token router (with RFC 7009 revocation), the `authenticate` guard,
 * RFC 8414 metadata, the cookie transport and the one error → HTTP table. Works on Express 4 and 5.
 * Importing it types `req.auth`.
 */
import './types';

export { createRefreshRouter, clientInfoFrom } from './router';
export type {
  RefreshRouter,
  RefreshRouterOptions,
  RefreshRouterDPoPOptions,
  TokenResponseBody,
  SessionBody,
  IssueInput,
} from './router';
export { authenticate } from './authenticate';
export type { AuthenticateOptions, AuthenticateDPoPOptions } from './authenticate';
export { createDPoPVerifier, DPOP_ALGORITHMS } from './dpop';
export type {
  DPoPAlgorithm,
  DPoPNonceOptions,
  DPoPProof,
  DPoPProofInput,
  DPoPVerifier,
  DPoPVerifierOptions,
} from './dpop';
export { authorizationServerMetadata } from './metadata';
export type {
  AuthorizationServerMetadata,
  AuthorizationServerMetadataDocument,
  AuthorizationServerMetadataOptions,
} from './metadata';
export type { CookieTransportOptions } from './cookie';
export { DBSC_MIN_BOUND_TTL_MS } from './dbsc';
export type { DbscAlgorithm, DbscOptions } from './dbsc';
export { errorHandler, sendError, setNoStore, toHttpError } from './errors';
export type { HttpError, HttpErrorBody, HttpErrorContext } from './errors';
export { asyncHandler } from './handler';
export type { AuthContext, AdapterLogger } from './types';
