/** refresh-rotation: public API. */
export * from './domain/errors';
export type * from './domain/refresh-token';
export {
  systemClock,
  isExpired,
  slideExpiry,
  judgeVersions,
  decideGeneration,
} from './domain/refresh-token';
export type * from './domain/refresh-token-repository';
export type * from './domain/version-store';
export type * from './domain/token-jobs';
export {
  TokenCodec,
  hashToken,
  keyIdOf,
  TOKEN_PREFIX,
  TOKEN_FORMAT,
  MIN_SECRET_BYTES,
  MAX_GENERATION,
} from './domain/token-codec';
export type { ParsedRefreshToken, TokenSubject } from './domain/token-codec';
export { RotationService } from './rotation-service';
export type {
  TokenResponse,
  SessionView,
  AccessTokenClaims,
  IssueOptions,
  VersionSnapshot,
} from './rotation-service';
export { resolveOptions, parseDuration } from './options';
export type { RefreshRotationOptions, ResolvedOptions, AuditEvent, Duration } from './options';
export { AccessTokens, ACCESS_TOKEN_ALGORITHMS, MIN_ACCESS_SECRET_BYTES } from './access-tokens';
export type { AccessTokenAlgorithm } from './access-tokens';
