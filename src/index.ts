/**
 * refresh-rotation: the rotation service, its options, the errors it throws and the ports an
 * adapter implements. The adapters are in the subpaths: `refresh-rotation/express`,
 * `refresh-rotation/mongoose`, `refresh-rotation/memory`, `refresh-rotation/bullmq`,
 * `refresh-rotation/redis` and `refresh-rotation/worker`.
 */

// The use cases: issue, refresh, revoke, sessions.
export { RotationService } from './rotation-service';
export type {
  TokenResponse,
  SessionView,
  AccessTokenClaims,
  IssueOptions,
  RefreshContext,
  VersionSnapshot,
  DeviceBound,
} from './rotation-service';

// Options, validated once by the RotationService constructor.
export type { RefreshRotationOptions, AuditEvent, Duration, RefreshOutcome } from './options';
// Durations as the options read them, for an app that takes them from its own configuration.
export { parseDuration } from './domain/duration';
export type { AccessTokenAlgorithm } from './domain/access-token';
export { ACCESS_TOKEN_ALGORITHMS, MIN_ACCESS_SECRET_BYTES } from './domain/access-token';

// Errors: classes with a stable `code`; `isRefreshRotationError` recognises them across copies.
export {
  RefreshRotationError,
  isRefreshRotationError,
  InvalidRequestError,
  UnsupportedGrantTypeError,
  InvalidGrantError,
  InvalidAccessTokenError,
  StoreUnavailableError,
  NotFoundError,
  ConflictError,
  OptionsError,
  MalformedTokenError,
  InvalidDpopProofError,
  UseDpopNonceError,
} from './domain/errors';
export type { RefreshRotationErrorCode, InvalidGrantReason } from './domain/errors';

// The ports an adapter implements, and the record and values they carry.
export type { RefreshTokenRepository } from './domain/refresh-token-repository';
export type { VersionStore } from './domain/version-store';
export type { TokenJobs, RevokeAllJob, TouchJob } from './domain/token-jobs';
export type { RevocationBus, RevocationNotice, RevocationSignal } from './domain/revocation-bus';
export type { DPoPReplayCache } from './domain/dpop-replay-cache';
export type {
  RefreshTokenRecord,
  NewRefreshTokenRecord,
  RotateInput,
  BindDeviceInput,
  SupersededGeneration,
  RevocationReason,
  ClientInfo,
  Touch,
  GlobalVersion,
  Clock,
} from './domain/refresh-token';
export { systemClock } from './domain/refresh-token';
export type {
  SessionBinding,
  DpopBinding,
  DbscBinding,
  PublicJwk,
  DeviceKey,
} from './domain/session-binding';

// The token string: what a repository's `findByTokenHash` takes, and the prefix secret scanners see.
export { hashToken, TOKEN_PREFIX, MIN_SECRET_BYTES } from './domain/token-codec';
