/**
 * Options of `RotationService`: validated once by `resolveOptions`, frozen, with named errors
 * (`OptionsError`) that say what to change.
 */
import type { KeyObject } from 'node:crypto';
import {
  resolveAccessTokenKeys,
  type AccessTokenAlgorithm,
  type AccessTokenKeys,
} from './domain/access-token';
import { parseDuration, type Duration } from './domain/duration';
import { OptionsError, type InvalidGrantReason } from './domain/errors';
import { InlineTokenJobs } from './domain/inline-token-jobs';
import { systemClock, type Clock } from './domain/refresh-token';
import type { RefreshTokenRepository } from './domain/refresh-token-repository';
import type { RevocationBus } from './domain/revocation-bus';
import type { TokenJobs } from './domain/token-jobs';
import { TokenCodec } from './domain/token-codec';
import type { VersionStore } from './domain/version-store';

export { parseDuration, type Duration };

/** Options of `RotationService`. */
export interface RefreshRotationOptions {
  /** Where session records live (`MemoryRefreshTokenRepository`, `MongooseRefreshTokenRepository`). */
  repository: RefreshTokenRepository;
  /** Per-user and global minimum versions. */
  versions: VersionStore;
  /** Where revoke-all and touch work goes. Default: `InlineTokenJobs` (done at once via the repository). */
  jobs?: TokenJobs | undefined;
  accessToken: {
    /** Default `'HS256'`. HS* take `secret`; RS256/ES256/EdDSA take `privateKey` (and optionally `publicKey`). */
    algorithm?: AccessTokenAlgorithm | undefined;
    /** HS* secret, at least 32 bytes. */
    secret?: string | Buffer | KeyObject | undefined;
    /** PEM or KeyObject: RSA ≥ 2048 bits (RS256), P-256 (ES256), Ed25519 (EdDSA). */
    privateKey?: string | KeyObject | undefined;
    /** Default: derived from `privateKey`. Must match it. */
    publicKey?: string | KeyObject | undefined;
    /** Access-token lifetime, at least 1s. Default `'15m'`. */
    ttl?: Duration | undefined;
    issuer?: string | undefined;
    audience?: string | undefined;
  };
  refreshToken: {
    /** First signs, all verify (so secrets rotate without logging anyone out); each ≥ 32 bytes. */
    secrets: ReadonlyArray<string | Buffer>;
    /** Idle lifetime; slides on each refresh. Default `'30d'`. */
    idleTtl?: Duration | undefined;
    /** Absolute lifetime of a session; never slides. Default `'90d'`. Must be ≥ `idleTtl`. */
    absoluteTtl?: Duration | undefined;
    /**
     * How long after a rotation an older token is answered with the current one instead of being
     * treated as reuse (concurrent tabs, a straggler several rotations behind, lost responses).
     * Counted from when that token's generation was superseded. Default `'10s'`; 0 disables.
     */
    reuseGrace?: Duration | undefined;
  };
  /**
   * Fan-out of revocations between app instances (`RedisRevocationBus` from
   * `refresh-rotation/redis`). With it, a revocation (revoke-all, breach rotation, one session)
   * is published before the call that made it returns, and every instance drops its cached
   * versions and session states at once; without it (or while it is down) other instances see the
   * change when their caches expire (`revocationCache.ttl`, 1 s by default). While it is synced,
   * the service keeps
   * revocation state for longer (`revocationCache.ttlWithBus`), so checks rarely read the store.
   * Default: none (right for one instance).
   */
  revocationBus?: RevocationBus | undefined;
  /**
   * The one cache of revocation state: user and global minimum versions and session states, read
   * by refresh and by `authenticate({ checkRevocation })` (version stores keep no cache of their
   * own). While the `revocationBus` is synced (every revocation is pushed to this instance before
   * it is answered) entries are trusted for `ttlWithBus`, default `'5s'` (also how long a notice
   * this instance missed, say one whose publish failed, can go unseen); otherwise for `ttl`,
   * default `'1s'` (0: the stores are read on every request, two extra reads per refresh).
   * `maxEntries` (default 10 000) bounds the entries, oldest out first. Revocations through this
   * service clear their entries at once.
   */
  revocationCache?:
    | {
        ttl?: Duration | undefined;
        ttlWithBus?: Duration | undefined;
        maxEntries?: number | undefined;
      }
    | undefined;
  /** Default: the system clock. */
  clock?: Clock | undefined;
  /** Called synchronously with each audit event; never receives a token. Errors it throws are ignored. */
  onAuditEvent?: ((event: AuditEvent) => void) | undefined;
  /**
   * OpenTelemetry spans for each use case (`refresh-rotation.refresh`, …: docs/operations.md,
   * "Traces"), through `@opentelemetry/api` when it is installed and an SDK is registered; a no-op
   * otherwise. Spans carry outcomes and error codes, never a token or an id. Default `true`.
   */
  tracing?: boolean | undefined;
}

/** What the audit hook receives. Carries ids, never a token. */
export type AuditEvent =
  | { type: 'token.issued'; at: Date; userId: string; sessionId: string }
  | { type: 'token.rotated'; at: Date; userId: string; sessionId: string; generation: number }
  | {
      type: 'token.reuse_detected';
      at: Date;
      userId: string;
      sessionId: string;
      presentedGeneration: number;
      currentGeneration: number;
    }
  | {
      type: 'token.rejected';
      at: Date;
      reason: InvalidGrantReason;
      userId?: string | undefined;
      sessionId?: string | undefined;
    }
  | { type: 'session.revoked'; at: Date; userId: string; sessionId: string; reason: string }
  | {
      type: 'user.revoked_all';
      at: Date;
      userId: string;
      reason: string;
      minTokenVersion: number;
      inline: boolean;
    }
  | { type: 'global.rotated'; at: Date; minVersion: number; reason: string; gracePeriodMs: number }
  | {
      /**
       * A token with a valid tag that its session never had (its hash is neither the current one
       * nor the one recorded for its generation): only a holder of the refresh secret `keyId`
       * can make one. Refused, nothing changed. High severity: see docs/operations.md.
       */
      type: 'secret.compromise_suspected';
      at: Date;
      keyId: number;
      userId: string;
      sessionId: string;
      presentedGeneration: number;
      currentGeneration: number;
    }
  | {
      /** Once per `refresh()` call, whatever its result, with the time it took (for metrics). */
      type: 'refresh.completed';
      at: Date;
      outcome: RefreshOutcome;
      /** Wall time of the call in this process, in milliseconds. */
      durationMs: number;
    };

/**
 * How a refresh ended: `rotated` (a new token), `grace` (the current token again, within
 * `reuseGrace`), `reused` (a rotated token replayed: the session is revoked), `forged`, `expired`,
 * `revoked`, `outdated` (a revoke-all or breach rotation cut it off), `malformed`,
 * `unknown_session`, `invalid_request` (no token), `error` (the store failed).
 */
export type RefreshOutcome =
  | 'rotated'
  | 'grace'
  | 'reused'
  | 'forged'
  | 'invalid_dpop_proof'
  | 'expired'
  | 'revoked'
  | 'outdated'
  | 'malformed'
  | 'unknown_session'
  | 'invalid_request'
  | 'error';

/** Options after validation: durations in milliseconds, keys as KeyObjects, frozen. */
export interface ResolvedOptions {
  readonly repository: RefreshTokenRepository;
  readonly versions: VersionStore;
  readonly jobs: TokenJobs;
  readonly clock: Clock;
  readonly revocationBus: RevocationBus | undefined;
  readonly revocationCache: Readonly<{ ttlMs: number; ttlWithBusMs: number; maxEntries: number }>;
  readonly onAuditEvent: ((event: AuditEvent) => void) | undefined;
  readonly tracing: boolean;
  readonly accessToken: Readonly<
    AccessTokenKeys & { ttlMs: number; issuer: string | undefined; audience: string | undefined }
  >;
  readonly refreshToken: Readonly<{
    codec: TokenCodec;
    idleTtlMs: number;
    absoluteTtlMs: number;
    reuseGraceMs: number;
  }>;
}

function durationOption(
  value: unknown,
  name: string,
  fallback: Duration,
  minimumMs: number,
): number {
  const msValue = parseDuration(value ?? fallback, name);
  if (msValue < minimumMs) {
    throw new OptionsError(`${name} must be at least ${minimumMs}ms; got ${String(value)}`);
  }
  return msValue;
}

function requirePort<T extends object>(
  value: unknown,
  name: string,
  methods: readonly (keyof T)[],
): T {
  const missing =
    typeof value !== 'object' || value === null
      ? methods
      : methods.filter(
          (method) => typeof (value as Record<keyof T, unknown>)[method] !== 'function',
        );
  if (missing.length > 0) {
    throw new OptionsError(
      `${name} must implement ${methods.join(', ')}; missing ${missing.join(', ')}`,
    );
  }
  return value as T;
}

function booleanOption(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean')
    throw new OptionsError(`${name} must be true or false; got ${JSON.stringify(value)}`);
  return value;
}

function optionalString(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0)
    throw new OptionsError(`${name} must be a non-empty string`);
  return value;
}

function requireObject<T>(value: T | undefined, name: string): T {
  if (typeof value !== 'object' || value === null)
    throw new OptionsError(`${name} is required (an object)`);
  return value;
}

/** Validates `options` once and returns them resolved and frozen. Throws `OptionsError`. */
export function resolveOptions(options: RefreshRotationOptions): ResolvedOptions {
  requireObject(options, 'options');
  const repository = requirePort<RefreshTokenRepository>(options.repository, 'repository', [
    'save',
    'findBySessionId',
    'rotate',
    'revokeBySession',
    'revokeAllForUser',
    'listActiveForUser',
    'touchMany',
  ]);
  const versions = requirePort<VersionStore>(options.versions, 'versions', [
    'getUserMinVersion',
    'bumpUserMinVersion',
    'getGlobal',
    'bumpGlobal',
  ]);
  const jobs =
    options.jobs === undefined
      ? new InlineTokenJobs(repository)
      : requirePort<TokenJobs>(options.jobs, 'jobs', ['revokeAll', 'touch']);
  const clock =
    options.clock === undefined ? systemClock : requirePort<Clock>(options.clock, 'clock', ['now']);
  if (options.onAuditEvent !== undefined && typeof options.onAuditEvent !== 'function') {
    throw new OptionsError('onAuditEvent must be a function');
  }

  const revocationBus =
    options.revocationBus === undefined
      ? undefined
      : requirePort<RevocationBus>(options.revocationBus, 'revocationBus', [
          'publish',
          'subscribe',
        ]);
  const revocationCache = options.revocationCache ?? {};
  if (typeof revocationCache !== 'object' || revocationCache === null)
    throw new OptionsError('revocationCache must be an object such as { ttl: "1s" }');
  const maxEntries = revocationCache.maxEntries ?? 10_000;
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new OptionsError(
      `revocationCache.maxEntries must be a whole number >= 1; got ${String(maxEntries)}`,
    );
  }

  const access = requireObject(options.accessToken, 'accessToken');
  const keys = resolveAccessTokenKeys(access);
  const refresh = requireObject(options.refreshToken, 'refreshToken');
  const codec = new TokenCodec(refresh.secrets);
  const idleTtlMs = durationOption(refresh.idleTtl, 'refreshToken.idleTtl', '30d', 1_000);
  const absoluteTtlMs = durationOption(
    refresh.absoluteTtl,
    'refreshToken.absoluteTtl',
    '90d',
    1_000,
  );
  if (idleTtlMs > absoluteTtlMs) {
    throw new OptionsError(
      `refreshToken.idleTtl (${idleTtlMs}ms) must not exceed refreshToken.absoluteTtl (${absoluteTtlMs}ms)`,
    );
  }

  return Object.freeze({
    repository,
    versions,
    jobs,
    clock,
    revocationBus,
    revocationCache: Object.freeze({
      ttlMs: durationOption(revocationCache.ttl, 'revocationCache.ttl', '1s', 0),
      ttlWithBusMs: durationOption(
        revocationCache.ttlWithBus,
        'revocationCache.ttlWithBus',
        '5s',
        0,
      ),
      maxEntries,
    }),
    onAuditEvent: options.onAuditEvent,
    tracing: booleanOption(options.tracing, 'tracing', true),
    accessToken: Object.freeze({
      ...keys,
      ttlMs: durationOption(access.ttl, 'accessToken.ttl', '15m', 1_000),
      issuer: optionalString(access.issuer, 'accessToken.issuer'),
      audience: optionalString(access.audience, 'accessToken.audience'),
    }),
    refreshToken: Object.freeze({
      codec,
      idleTtlMs,
      absoluteTtlMs,
      reuseGraceMs: durationOption(refresh.reuseGrace, 'refreshToken.reuseGrace', '10s', 0),
    }),
  });
}
