/**
 * The one environment schema (DESIGN §7), shared by the worker entrypoint and the example app.
 * Every variable is parsed and validated here, once, with its default; every problem is reported
 * at once with the variable's name and what to set. Documented variable by variable in
 * `.env.example`. Only `workers/` and `examples/` read the environment: the library takes options.
 */
import { randomBytes } from 'node:crypto';
import { OptionsError } from '../src/domain/errors';
import { parseDuration as parseLibraryDuration } from '../src/options';

/** The raw environment: `process.env` or a plain object in tests. */
export type RawEnv = Readonly<Record<string, string | undefined>>;

export type AccessTokenAlgorithm = 'HS256' | 'HS384' | 'HS512' | 'RS256' | 'ES256' | 'EdDSA';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** The parsed environment of the example app (and the worker's subset, {@link WorkerEnv}). Frozen. */
export interface Env {
  /** `NODE_ENV`, default `development`. */
  readonly nodeEnv: string;
  readonly isProduction: boolean;
  /** True when neither `MONGODB_URI` nor `REDIS_URL` is set: in-memory adapters, inline jobs. */
  readonly inMemoryDemo: boolean;
  /** True when the token secrets were generated at start (in-memory demo only; never in production). */
  readonly devSecretsGenerated: boolean;
  readonly mongodbUri: string | undefined;
  readonly redisUrl: string | undefined;
  readonly accessToken: {
    readonly algorithm: AccessTokenAlgorithm;
    /** HS* only. */
    readonly secret: string | undefined;
    /** RS256 / ES256 / EdDSA only (PEM). */
    readonly privateKey: string | undefined;
    readonly publicKey: string | undefined;
    readonly ttlMs: number;
    readonly issuer: string | undefined;
    readonly audience: string | undefined;
  };
  readonly refreshToken: {
    /** Current first; older ones still verify. */
    readonly secrets: readonly string[];
    readonly idleTtlMs: number;
    readonly absoluteTtlMs: number;
    readonly reuseGraceMs: number;
  };
  readonly queue: {
    /** BullMQ key prefix; a `{hash tag}` keeps each queue in one Redis Cluster slot. */
    readonly prefix: string;
    /** Touches of one session inside this window cost one job. */
    readonly touchWindowMs: number;
  };
  readonly worker: WorkerSettings;
  readonly cleanup: CleanupSettings;
  readonly http: {
    readonly port: number;
    readonly cookie: {
      readonly transport: boolean;
      readonly secure: boolean;
      readonly name: string;
      readonly csrfHeader: string;
    };
    readonly rateLimit: {
      /** Per client IP: register, login and password change together. */
      readonly loginPerMinute: number;
      /** Failed password checks per account (login: email; password change: user id). */
      readonly accountPerHour: number;
      readonly tokenPerMinute: number;
    };
  };
  readonly logLevel: LogLevel;
}

export interface WorkerSettings {
  /** Parallel revoke-all jobs per process (cleanup runs one at a time per process). */
  readonly concurrency: number;
  /**
   * Touch jobs held at once per process; also the largest `touchMany` batch. Keep it at or below
   * 50 on FerretDB v1, which deadlocks on an update command of about 100 statements.
   */
  readonly touchBatchSize: number;
  /** A touch batch is written at most this long after its first job arrived. */
  readonly touchFlushMs: number;
  /** SIGTERM/SIGINT: exit 0 within this time, returning unfinished jobs to the queue. */
  readonly shutdownTimeoutMs: number;
  /** A job's lock lives this long unless renewed: a crashed worker's jobs are retried after it. */
  readonly lockDurationMs: number;
  /** Port of the `/healthz` HTTP server; `undefined` disables it, 0 picks a free port. */
  readonly healthPort: number | undefined;
  /** A health log line every this often; 0 disables it. */
  readonly healthLogIntervalMs: number;
}

export interface CleanupSettings {
  /** Cron pattern of the cleanup job scheduler. */
  readonly cron: string;
  /** Records are deleted this long after they expired or were revoked. */
  readonly retentionMs: number;
  /** Records deleted per batch (one query each). */
  readonly batchSize: number;
  /** One cleanup run stops after this long; the next run continues. */
  readonly timeBudgetMs: number;
}

/** What the worker reads: the database, Redis, and its own settings. Frozen. */
export interface WorkerEnv {
  readonly nodeEnv: string;
  readonly mongodbUri: string;
  readonly redisUrl: string;
  readonly queue: Env['queue'];
  readonly worker: WorkerSettings;
  readonly cleanup: CleanupSettings;
  readonly logLevel: LogLevel;
}

/** The environment is invalid; `problems` lists every variable at fault with what to set. */
export class EnvError extends OptionsError {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid environment (see .env.example):\n  - ${problems.join('\n  - ')}`);
  }
}

const ALGORITHMS: readonly AccessTokenAlgorithm[] = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'ES256',
  'EdDSA',
];
const LOG_LEVELS: readonly LogLevel[] = [
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
  'silent',
];
const MIN_SECRET_BYTES = 32;

/**
 * Milliseconds of a duration such as `15m`, `30d`, `10s`, `250ms` or a bare number of
 * milliseconds (the library's `parseDuration`); null when the text is not one.
 */
export function parseDuration(text: string): number | null {
  const trimmed = text.trim();
  try {
    return parseLibraryDuration(/^\d+$/.test(trimmed) ? Number(trimmed) : trimmed, 'duration');
  } catch {
    return null;
  }
}

/**
 * True when neither `MONGODB_URI` nor `REDIS_URL` is set: the example app then runs on the
 * in-memory adapters with inline jobs and dev-only secrets. {@link loadEnv} refuses that mode when
 * `NODE_ENV=production`.
 */
export function isInMemoryDemoMode(env: RawEnv = process.env): boolean {
  return !present(env.MONGODB_URI) && !present(env.REDIS_URL);
}

/**
 * Parse and validate the example app's environment. Throws {@link EnvError} listing every problem.
 * In in-memory demo mode (and only there), missing token secrets are generated at start and
 * `devSecretsGenerated` is true.
 */
export function loadEnv(env: RawEnv = process.env): Env {
  const reader = new EnvReader(env);
  const nodeEnv = reader.string('NODE_ENV', 'development');
  const isProduction = nodeEnv === 'production';
  const inMemoryDemo = isInMemoryDemoMode(env);
  if (inMemoryDemo && isProduction) {
    reader.problem(
      'MONGODB_URI / REDIS_URL: neither is set, and the in-memory demo mode is refused with ' +
        'NODE_ENV=production. Set MONGODB_URI (and REDIS_URL for the worker).',
    );
  }
  const mongodbUri = reader.url('MONGODB_URI', ['mongodb:', 'mongodb+srv:']);
  const redisUrl = reader.url('REDIS_URL', ['redis:', 'rediss:']);
  if (redisUrl && !present(env.MONGODB_URI)) {
    reader.problem(
      'REDIS_URL is set but MONGODB_URI is not: jobs need the database the worker also uses.',
    );
  }
  const generate = inMemoryDemo && !isProduction;
  const accessToken = readAccessToken(reader, generate);
  const refreshToken = readRefreshToken(reader, generate);
  const http = readHttp(reader, isProduction);
  const shared = readShared(reader);
  reader.finish();
  return deepFreeze({
    nodeEnv,
    isProduction,
    inMemoryDemo,
    devSecretsGenerated: accessToken.generated || refreshToken.generated,
    mongodbUri,
    redisUrl,
    accessToken: accessToken.value,
    refreshToken: refreshToken.value,
    queue: shared.queue,
    worker: shared.worker,
    cleanup: shared.cleanup,
    http,
    logLevel: shared.logLevel,
  });
}

/**
 * Parse and validate the worker's environment: `MONGODB_URI` and `REDIS_URL` are required; token
 * secrets are not read (the worker never handles a token). Throws {@link EnvError}.
 */
export function loadWorkerEnv(env: RawEnv = process.env): WorkerEnv {
  const reader = new EnvReader(env);
  const nodeEnv = reader.string('NODE_ENV', 'development');
  const mongodbUri = reader.url('MONGODB_URI', ['mongodb:', 'mongodb+srv:']);
  const redisUrl = reader.url('REDIS_URL', ['redis:', 'rediss:']);
  if (!present(env.MONGODB_URI)) {
    reader.problem(
      'MONGODB_URI is required by the worker (e.g. mongodb://localhost:27017/refresh_rotation).',
    );
  }
  if (!present(env.REDIS_URL)) {
    reader.problem('REDIS_URL is required by the worker (e.g. redis://localhost:6379).');
  }
  const shared = readShared(reader);
  reader.finish();
  return deepFreeze({
    nodeEnv,
    mongodbUri: mongodbUri ?? '',
    redisUrl: redisUrl ?? '',
    queue: shared.queue,
    worker: shared.worker,
    cleanup: shared.cleanup,
    logLevel: shared.logLevel,
  });
}

function readShared(reader: EnvReader) {
  const queue = {
    prefix: reader.queuePrefix('QUEUE_PREFIX', '{rr}'),
    touchWindowMs: reader.duration('TOUCH_WINDOW', '60s', { min: 1_000 }),
  };
  const worker: WorkerSettings = {
    concurrency: reader.integer('WORKER_CONCURRENCY', 10, { min: 1, max: 1_000 }),
    touchBatchSize: reader.integer('TOUCH_BATCH_SIZE', 50, { min: 1, max: 1_000 }),
    touchFlushMs: reader.duration('TOUCH_FLUSH_DELAY', '5ms', { min: 0, max: 10_000 }),
    shutdownTimeoutMs: reader.duration('WORKER_SHUTDOWN_TIMEOUT', '25s', { min: 1_000 }),
    lockDurationMs: reader.duration('WORKER_LOCK_DURATION', '30s', { min: 1_000 }),
    healthPort: reader.optionalInteger('WORKER_HEALTH_PORT', { min: 0, max: 65_535 }),
    healthLogIntervalMs: reader.duration('WORKER_HEALTH_LOG_INTERVAL', '60s', { min: 0 }),
  };
  const cleanup: CleanupSettings = {
    cron: reader.cron('CLEANUP_CRON', '*/10 * * * *'),
    retentionMs: reader.duration('CLEANUP_RETENTION', '7d', { min: 0 }),
    batchSize: reader.integer('CLEANUP_BATCH_SIZE', 1_000, { min: 1, max: 100_000 }),
    timeBudgetMs: reader.duration('CLEANUP_TIME_BUDGET', '2m', { min: 100 }),
  };
  const logLevel = reader.oneOf('LOG_LEVEL', LOG_LEVELS, 'info');
  return { queue, worker, cleanup, logLevel };
}

function readAccessToken(reader: EnvReader, generate: boolean) {
  const algorithm = reader.oneOf('ACCESS_TOKEN_ALGORITHM', ALGORITHMS, 'HS256');
  const symmetric = algorithm.startsWith('HS');
  let secret = symmetric ? reader.optionalString('ACCESS_TOKEN_SECRET') : undefined;
  let generated = false;
  if (symmetric && secret === undefined && generate) {
    secret = devSecret();
    generated = true;
  } else if (symmetric) {
    reader.secret(
      'ACCESS_TOKEN_SECRET',
      secret,
      `a random string of at least ${MIN_SECRET_BYTES} bytes (openssl rand -base64 48)`,
    );
  }
  const privateKey = symmetric ? undefined : reader.pem('ACCESS_TOKEN_PRIVATE_KEY', algorithm);
  const publicKey = symmetric ? undefined : reader.pem('ACCESS_TOKEN_PUBLIC_KEY', algorithm);
  return {
    generated,
    value: {
      algorithm,
      secret,
      privateKey,
      publicKey,
      ttlMs: reader.duration('ACCESS_TOKEN_TTL', '15m', { min: 1_000 }),
      issuer: reader.optionalString('ACCESS_TOKEN_ISSUER'),
      audience: reader.optionalString('ACCESS_TOKEN_AUDIENCE'),
    },
  };
}

function readRefreshToken(reader: EnvReader, generate: boolean) {
  const raw = reader.optionalString('REFRESH_TOKEN_SECRETS');
  let secrets =
    raw === undefined
      ? []
      : raw
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s.length > 0);
  let generated = false;
  if (secrets.length === 0 && generate) {
    secrets = [devSecret()];
    generated = true;
  } else if (secrets.length === 0) {
    reader.problem(
      `REFRESH_TOKEN_SECRETS is required: a comma-separated list (current first) of random strings of at least ${MIN_SECRET_BYTES} bytes.`,
    );
  } else if (secrets.length > 256) {
    reader.problem(`REFRESH_TOKEN_SECRETS holds at most 256 secrets; got ${secrets.length}.`);
  }
  secrets.forEach((secret, index) => {
    if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
      reader.problem(
        `REFRESH_TOKEN_SECRETS[${index}] must be at least ${MIN_SECRET_BYTES} bytes; got ${Buffer.byteLength(secret)}.`,
      );
    }
  });
  const idleTtlMs = reader.duration('REFRESH_IDLE_TTL', '30d', { min: 1_000 });
  const absoluteTtlMs = reader.duration('REFRESH_ABSOLUTE_TTL', '90d', { min: 1_000 });
  if (absoluteTtlMs < idleTtlMs) {
    reader.problem('REFRESH_ABSOLUTE_TTL must be at least REFRESH_IDLE_TTL.');
  }
  return {
    generated,
    value: {
      secrets,
      idleTtlMs,
      absoluteTtlMs,
      reuseGraceMs: reader.duration('REFRESH_REUSE_GRACE', '10s', { min: 0 }),
    },
  };
}

function readHttp(reader: EnvReader, isProduction: boolean): Env['http'] {
  const secure = reader.boolean('COOKIE_SECURE', true);
  const name = reader.string('COOKIE_NAME', secure ? '__Secure-refresh_token' : 'refresh_token');
  if (name.startsWith('__Secure-') && !secure) {
    reader.problem(
      'COOKIE_NAME starts with __Secure- but COOKIE_SECURE=false: browsers would drop it.',
    );
  }
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) {
    reader.problem(
      `COOKIE_NAME must be a cookie token (letters, digits, -_.); got ${JSON.stringify(name)}.`,
    );
  }
  if (!secure && isProduction) {
    reader.problem('COOKIE_SECURE=false is refused with NODE_ENV=production.');
  }
  const csrfHeader = reader.string('CSRF_HEADER', 'x-refresh-csrf').toLowerCase();
  if (!/^[a-z0-9-]+$/.test(csrfHeader)) {
    reader.problem(`CSRF_HEADER must be an HTTP header name; got ${JSON.stringify(csrfHeader)}.`);
  }
  return {
    port: reader.integer('PORT', 3000, { min: 0, max: 65_535 }),
    cookie: { transport: reader.boolean('COOKIE_TRANSPORT', true), secure, name, csrfHeader },
    rateLimit: {
      loginPerMinute: reader.integer('RATE_LIMIT_LOGIN_PER_MINUTE', 10, { min: 1, max: 1_000_000 }),
      accountPerHour: reader.integer('RATE_LIMIT_ACCOUNT_PER_HOUR', 20, { min: 1, max: 1_000_000 }),
      tokenPerMinute: reader.integer('RATE_LIMIT_TOKEN_PER_MINUTE', 60, { min: 1, max: 1_000_000 }),
    },
  };
}

function devSecret(): string {
  return randomBytes(48).toString('base64url');
}

function present(value: string | undefined): value is string {
  return value !== undefined && value.trim() !== '';
}

/** Reads variables, records every problem, and throws them together in `finish()`. */
class EnvReader {
  private readonly problems: string[] = [];

  constructor(private readonly env: RawEnv) {}

  problem(message: string): void {
    this.problems.push(message);
  }

  finish(): void {
    if (this.problems.length > 0) throw new EnvError(this.problems);
  }

  optionalString(name: string): string | undefined {
    const value = this.env[name];
    return present(value) ? value.trim() : undefined;
  }

  string(name: string, fallback: string): string {
    return this.optionalString(name) ?? fallback;
  }

  url(name: string, protocols: readonly string[]): string | undefined {
    const value = this.optionalString(name);
    if (value === undefined) return undefined;
    let protocol: string | undefined;
    try {
      protocol = new URL(value).protocol;
    } catch {
      protocol = undefined;
    }
    if (protocol === undefined || !protocols.includes(protocol)) {
      this.problem(
        `${name} must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}.`,
      );
    }
    return value;
  }

  duration(name: string, fallback: string, bounds: { min?: number; max?: number } = {}): number {
    const text = this.string(name, fallback);
    const value = parseDuration(text);
    if (value === null) {
      this.problem(
        `${name} must be a duration such as 250ms, 10s, 15m, 12h or 30d; got ${JSON.stringify(text)}.`,
      );
      return parseDuration(fallback) ?? 0;
    }
    if (bounds.min !== undefined && value < bounds.min) {
      this.problem(`${name} must be at least ${bounds.min} ms; got ${JSON.stringify(text)}.`);
    }
    if (bounds.max !== undefined && value > bounds.max) {
      this.problem(`${name} must be at most ${bounds.max} ms; got ${JSON.stringify(text)}.`);
    }
    return value;
  }

  optionalInteger(name: string, bounds: { min: number; max: number }): number | undefined {
    const text = this.optionalString(name);
    if (text === undefined) return undefined;
    const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(value) || value < bounds.min || value > bounds.max) {
      this.problem(
        `${name} must be an integer from ${bounds.min} to ${bounds.max}; got ${JSON.stringify(text)}.`,
      );
      return undefined;
    }
    return value;
  }

  integer(name: string, fallback: number, bounds: { min: number; max: number }): number {
    return this.optionalInteger(name, bounds) ?? fallback;
  }

  boolean(name: string, fallback: boolean): boolean {
    const text = this.optionalString(name)?.toLowerCase();
    if (text === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(text)) return true;
    if (['0', 'false', 'no', 'off'].includes(text)) return false;
    this.problem(`${name} must be true or false; got ${JSON.stringify(text)}.`);
    return fallback;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const text = this.optionalString(name);
    if (text === undefined) return fallback;
    const match = allowed.find((candidate) => candidate.toLowerCase() === text.toLowerCase());
    if (match === undefined) {
      this.problem(`${name} must be one of ${allowed.join(', ')}; got ${JSON.stringify(text)}.`);
      return fallback;
    }
    return match;
  }

  secret(name: string, value: string | undefined, what: string): void {
    if (value === undefined) {
      this.problem(`${name} is required: ${what}.`);
    } else if (Buffer.byteLength(value) < MIN_SECRET_BYTES) {
      this.problem(
        `${name} must be at least ${MIN_SECRET_BYTES} bytes; got ${Buffer.byteLength(value)}.`,
      );
    }
  }

  /** A PEM key; `\n` written literally in the environment is turned into newlines. */
  pem(name: string, algorithm: AccessTokenAlgorithm): string | undefined {
    const value = this.optionalString(name)?.replace(/\\n/g, '\n');
    if (value === undefined) {
      this.problem(
        `${name} is required with ACCESS_TOKEN_ALGORITHM=${algorithm} (a PEM key; \\n may stand for newlines).`,
      );
    } else if (!/^-----BEGIN [A-Z ]+-----/.test(value)) {
      this.problem(`${name} must be a PEM key starting with -----BEGIN …-----.`);
    }
    return value;
  }

  cron(name: string, fallback: string): string {
    const text = this.string(name, fallback);
    const fields = text.split(/\s+/);
    if (
      fields.length < 5 ||
      fields.length > 6 ||
      !fields.every((f) => /^[\d*/,\-A-Za-z?LW#]+$/.test(f))
    ) {
      this.problem(
        `${name} must be a cron pattern of 5 or 6 fields (e.g. */10 * * * *); got ${JSON.stringify(text)}.`,
      );
    }
    return text;
  }

  queuePrefix(name: string, fallback: string): string {
    const text = this.string(name, fallback);
    if (text.includes(':') || /\s/.test(text)) {
      this.problem(
        `${name} must not contain ':' or spaces (use a hash tag such as {rr}); got ${JSON.stringify(text)}.`,
      );
    }
    return text;
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as Record<string, unknown>)) deepFreeze(child);
  }
  return value;
}
