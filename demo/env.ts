/**
 * The demo app's environment schema (`npm start`, `npm run demo`): services, token settings,
 * HTTP and rate limits, each with its default, every problem reported at once with the variable's
 * name and what to set (documented in `.env.example`). The rules are the library's own
 * (`ACCESS_TOKEN_ALGORITHMS`, `MIN_ACCESS_SECRET_BYTES`, `MIN_SECRET_BYTES`, `parseDuration`); the
 * services, queues and logs are read as the worker reads them (startup/common-env.ts).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import {
  ACCESS_TOKEN_ALGORITHMS,
  MIN_ACCESS_SECRET_BYTES,
  MIN_SECRET_BYTES,
  type AccessTokenAlgorithm,
} from 'refresh-rotation';
import { DBSC_MIN_BOUND_TTL_MS } from 'refresh-rotation/express';
import {
  readLogFormat,
  readLogLevel,
  readMongodbUri,
  readQueueSettings,
  readRedisUrl,
  type QueueSettings,
} from '../startup/common-env';
import { deepFreeze, EnvReader, present, type LogLevel, type RawEnv } from '../startup/env-reader';
import type { LogFormat } from '../startup/logging';

export { EnvError, type LogLevel, type RawEnv } from '../startup/env-reader';
export type { AccessTokenAlgorithm };

/** The parsed environment of the demo app. Frozen. */
export interface Env {
  /** `NODE_ENV`, default `development`. */
  readonly nodeEnv: string;
  readonly isProduction: boolean;
  /** True when neither `MONGODB_URI` nor `REDIS_URL` is set: in-memory adapters, inline jobs. */
  readonly inMemoryDemo: boolean;
  /** True when the token (or DBSC) secrets were generated at start (in-memory demo only; never in production). */
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
  readonly queue: QueueSettings;
  readonly http: {
    readonly port: number;
    /**
     * `TLS_KEY_FILE` and `TLS_CERT_FILE` (both or neither), read at start as PEM text: the app
     * then serves HTTPS itself (`node:https`). Undefined: plain HTTP (behind a TLS terminator).
     */
    readonly tls: { readonly key: string; readonly cert: string } | undefined;
    /**
     * `PUBLIC_URL`: the origin clients call the app at, which DPoP proofs name (`htu`). Default
     * the origin of `ACCESS_TOKEN_ISSUER` when that is a URL, else `http://localhost:<PORT>`
     * (`https://` with `tls`).
     */
    readonly publicUrl: string;
    readonly cookie: {
      readonly transport: boolean;
      readonly secure: boolean;
      readonly name: string;
      readonly csrfHeader: string;
      /**
       * `DBSC=true`: Device Bound Session Credentials on the cookie transport (`cookie.dbsc`).
       * Undefined when off (the default).
       */
      readonly dbsc:
        | {
            /** `DBSC_SECRET`, at least 32 bytes; generated in the in-memory demo when unset. */
            readonly secret: string;
            /** `DBSC_BOUND_TTL`, default 10m, at least 5m (`DBSC_MIN_BOUND_TTL_MS`). */
            readonly boundTtlMs: number;
          }
        | undefined;
    };
    readonly rateLimit: {
      /** Per client IP: register, login and password change together. */
      readonly loginPerMinute: number;
      /** Failed password checks per account (login: email; password change: user id). */
      readonly accountPerHour: number;
      readonly tokenPerMinute: number;
    };
    /** `ADMIN_USER_IDS`: who may open the queue dashboard; empty (the default): nobody, no dashboard. */
    readonly adminUserIds: readonly string[];
  };
  readonly logLevel: LogLevel;
  /** `LOG_FORMAT`: `auto` (pretty at a terminal in development), `json` or `pretty`. */
  readonly logFormat: LogFormat;
}

/**
 * Secrets that are public (docker-compose.yml's local-stack defaults) or obviously not random:
 * refused with `NODE_ENV=production`.
 */
const PLACEHOLDER_SECRETS: readonly RegExp[] = [
  /compose-local-only/i,
  /change[-_ .]?me/i,
  /placeholder/i,
  /not[-_ .]?(a[-_ .]?)?secret/i,
  /^(.)\1*$/, // one character repeated
];

/** True when `secret` is a known placeholder or development secret. */
export function isPlaceholderSecret(secret: string): boolean {
  return PLACEHOLDER_SECRETS.some((pattern) => pattern.test(secret));
}

/**
 * True when neither `MONGODB_URI` nor `REDIS_URL` is set: the demo app then runs on the
 * in-memory adapters with inline jobs and dev-only secrets. {@link loadEnv} refuses that mode when
 * `NODE_ENV=production`.
 */
export function isInMemoryDemoMode(env: RawEnv = process.env): boolean {
  return !present(env.MONGODB_URI) && !present(env.REDIS_URL);
}

/**
 * Parse and validate the demo app's environment. Throws `EnvError` listing every problem.
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
  const mongodbUri = readMongodbUri(reader);
  const redisUrl = readRedisUrl(reader);
  if (redisUrl && !present(env.MONGODB_URI)) {
    reader.problem(
      'REDIS_URL is set but MONGODB_URI is not: jobs need the database the worker also uses.',
    );
  }
  const generate = inMemoryDemo && !isProduction;
  const accessToken = readAccessToken(reader, generate, isProduction);
  const refreshToken = readRefreshToken(reader, generate, isProduction);
  const http = readHttp(reader, isProduction, accessToken.value.issuer, generate);
  const queue = readQueueSettings(reader);
  const logLevel = readLogLevel(reader);
  const logFormat = readLogFormat(reader);
  reader.finish();
  return deepFreeze({
    nodeEnv,
    isProduction,
    inMemoryDemo,
    devSecretsGenerated: accessToken.generated || refreshToken.generated || http.generated,
    mongodbUri,
    redisUrl,
    accessToken: accessToken.value,
    refreshToken: refreshToken.value,
    queue,
    http: http.value,
    logLevel,
    logFormat,
  });
}

function refusePlaceholder(reader: EnvReader, name: string, secret: string): void {
  if (isPlaceholderSecret(secret)) {
    reader.problem(
      `${name} is a placeholder or development secret, refused with NODE_ENV=production: set a random one (openssl rand -base64 48).`,
    );
  }
}

function readAccessToken(reader: EnvReader, generate: boolean, isProduction: boolean) {
  const algorithm = reader.oneOf('ACCESS_TOKEN_ALGORITHM', ACCESS_TOKEN_ALGORITHMS, 'HS256');
  const symmetric = algorithm.startsWith('HS');
  let secret = symmetric ? reader.optionalString('ACCESS_TOKEN_SECRET') : undefined;
  let generated = false;
  if (symmetric && secret === undefined && generate) {
    secret = devSecret();
    generated = true;
  } else if (symmetric && secret === undefined) {
    reader.problem(
      `ACCESS_TOKEN_SECRET is required: a random string of at least ${MIN_ACCESS_SECRET_BYTES} bytes (openssl rand -base64 48).`,
    );
  } else if (symmetric && secret !== undefined) {
    if (Buffer.byteLength(secret) < MIN_ACCESS_SECRET_BYTES) {
      reader.problem(
        `ACCESS_TOKEN_SECRET must be at least ${MIN_ACCESS_SECRET_BYTES} bytes; got ${Buffer.byteLength(secret)}.`,
      );
    }
    if (isProduction) refusePlaceholder(reader, 'ACCESS_TOKEN_SECRET', secret);
  }
  const privateKey = symmetric ? undefined : readPem(reader, 'ACCESS_TOKEN_PRIVATE_KEY', algorithm);
  const publicKey = symmetric ? undefined : readPem(reader, 'ACCESS_TOKEN_PUBLIC_KEY', algorithm);
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

/** A PEM key; `\n` written literally in the environment is turned into newlines. */
function readPem(
  reader: EnvReader,
  name: string,
  algorithm: AccessTokenAlgorithm,
): string | undefined {
  const value = reader.optionalString(name)?.replace(/\\n/g, '\n');
  if (value === undefined) {
    reader.problem(
      `${name} is required with ACCESS_TOKEN_ALGORITHM=${algorithm} (a PEM key; \\n may stand for newlines).`,
    );
  } else if (!/^-----BEGIN [A-Z ]+-----/.test(value)) {
    reader.problem(`${name} must be a PEM key starting with -----BEGIN …-----.`);
  }
  return value;
}

function readRefreshToken(reader: EnvReader, generate: boolean, isProduction: boolean) {
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
    if (isProduction && !generated) {
      refusePlaceholder(reader, `REFRESH_TOKEN_SECRETS[${index}]`, secret);
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

function readHttp(
  reader: EnvReader,
  isProduction: boolean,
  issuer: string | undefined,
  generate: boolean,
): { generated: boolean; value: Env['http'] } {
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
  const port = reader.integer('PORT', 3000, { min: 0, max: 65_535 });
  const tls = readTls(reader);
  const publicUrl = readPublicUrl(reader, issuer, port, tls !== undefined);
  const transport = reader.boolean('COOKIE_TRANSPORT', true);
  const dbsc = readDbsc(reader, {
    generate,
    isProduction,
    transport,
    secure,
    https: tls !== undefined || publicUrl.startsWith('https://'),
  });
  return {
    generated: dbsc.generated,
    value: {
      port,
      tls,
      publicUrl,
      cookie: { transport, secure, name, csrfHeader, dbsc: dbsc.value },
      rateLimit: {
        loginPerMinute: reader.integer('RATE_LIMIT_LOGIN_PER_MINUTE', 10, {
          min: 1,
          max: 1_000_000,
        }),
        accountPerHour: reader.integer('RATE_LIMIT_ACCOUNT_PER_HOUR', 20, {
          min: 1,
          max: 1_000_000,
        }),
        tokenPerMinute: reader.integer('RATE_LIMIT_TOKEN_PER_MINUTE', 60, {
          min: 1,
          max: 1_000_000,
        }),
      },
      adminUserIds: readAdminUserIds(reader),
    },
  };
}

/** A PEM file named by `name`, as text; a problem naming the variable when it cannot be read. */
function readPemFile(reader: EnvReader, name: string, path: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    reader.problem(`${name}=${path} cannot be read (${code}): it must name a readable PEM file.`);
    return undefined;
  }
  if (!/-----BEGIN [A-Z0-9 ]+-----/.test(text)) {
    reader.problem(`${name}=${path} is not a PEM file (no -----BEGIN …----- line).`);
    return undefined;
  }
  return text;
}

/**
 * `TLS_KEY_FILE` and `TLS_CERT_FILE`: both or neither. Read here, so a missing file, a file that
 * is not PEM or a key that does not match the certificate is a start-up problem naming them, not a
 * stack trace from `https.createServer`.
 */
function readTls(reader: EnvReader): Env['http']['tls'] {
  const keyFile = reader.optionalString('TLS_KEY_FILE');
  const certFile = reader.optionalString('TLS_CERT_FILE');
  if (keyFile === undefined && certFile === undefined) return undefined;
  if (keyFile === undefined || certFile === undefined) {
    const [set, unset] =
      keyFile === undefined ? ['TLS_CERT_FILE', 'TLS_KEY_FILE'] : ['TLS_KEY_FILE', 'TLS_CERT_FILE'];
    reader.problem(
      `${set} is set but ${unset} is not: set both (the PEM private key and certificate) to serve HTTPS, or neither for plain HTTP.`,
    );
    return undefined;
  }
  const key = readPemFile(reader, 'TLS_KEY_FILE', keyFile);
  const cert = readPemFile(reader, 'TLS_CERT_FILE', certFile);
  if (key === undefined || cert === undefined) return undefined;
  try {
    createSecureContext({ key, cert });
  } catch (error) {
    reader.problem(
      `TLS_KEY_FILE and TLS_CERT_FILE do not make a TLS key pair (${(error as Error).message}): the key must be the certificate's, both PEM, the key unencrypted.`,
    );
    return undefined;
  }
  return { key, cert };
}

/**
 * The library's rules for `cookie.dbsc`: a secret of at least 32 bytes, a bound lifetime of at
 * least `DBSC_MIN_BOUND_TTL_MS`. Checked here too, so a bad value is an EnvError naming the
 * variable; `createRefreshRouter` checks them again.
 */
const MIN_DBSC_SECRET_BYTES = 32;

/** `DBSC`, `DBSC_SECRET`, `DBSC_BOUND_TTL`: device-bound sessions on the cookie transport. */
function readDbsc(
  reader: EnvReader,
  context: {
    generate: boolean;
    isProduction: boolean;
    transport: boolean;
    secure: boolean;
    https: boolean;
  },
): { generated: boolean; value: Env['http']['cookie']['dbsc'] } {
  const enabled = reader.boolean('DBSC', false);
  if (!enabled) {
    for (const name of ['DBSC_SECRET', 'DBSC_BOUND_TTL'])
      if (reader.optionalString(name) !== undefined)
        reader.problem(`${name} is set but DBSC is not on: set DBSC=true, or unset ${name}.`);
    return { generated: false, value: undefined };
  }
  if (!context.transport)
    reader.problem('DBSC=true needs COOKIE_TRANSPORT=true: DBSC binds the refresh cookie.');
  if (!context.secure)
    reader.problem(
      'DBSC=true needs COOKIE_SECURE=true: browsers speak DBSC over HTTPS only, with a Secure cookie.',
    );
  if (!context.https)
    reader.problem(
      'DBSC=true needs HTTPS: set TLS_KEY_FILE and TLS_CERT_FILE, or, behind a TLS terminator, an https PUBLIC_URL (Chromium ignores DBSC on plain http).',
    );
  let secret = reader.optionalString('DBSC_SECRET');
  let generated = false;
  if (secret === undefined && context.generate) {
    secret = devSecret();
    generated = true;
  } else if (secret === undefined) {
    reader.problem(
      `DBSC_SECRET is required with DBSC=true: a random string of at least ${MIN_DBSC_SECRET_BYTES} bytes, the same on every instance (openssl rand -base64 48).`,
    );
  } else {
    if (Buffer.byteLength(secret) < MIN_DBSC_SECRET_BYTES) {
      reader.problem(
        `DBSC_SECRET must be at least ${MIN_DBSC_SECRET_BYTES} bytes; got ${Buffer.byteLength(secret)}.`,
      );
    }
    if (context.isProduction) refusePlaceholder(reader, 'DBSC_SECRET', secret);
  }
  const boundTtlMs = reader.duration('DBSC_BOUND_TTL', '10m');
  if (boundTtlMs < DBSC_MIN_BOUND_TTL_MS) {
    reader.problem(
      `DBSC_BOUND_TTL must be at least ${DBSC_MIN_BOUND_TTL_MS / 60_000}m (Chromium refreshes a cookie by proof on every request in its last 2 minutes, and signs at most 6 times per 9 minutes); got ${JSON.stringify(reader.string('DBSC_BOUND_TTL', '10m'))}.`,
    );
  }
  return { generated, value: { secret: secret ?? '', boundTtlMs } };
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * `PUBLIC_URL`, as an origin. Configured rather than read from `Host` (a proxy may rewrite it, a
 * client may choose it); the default follows the issuer so the metadata's endpoints and the URL
 * proofs must name agree.
 */
function readPublicUrl(
  reader: EnvReader,
  issuer: string | undefined,
  port: number,
  https: boolean,
): string {
  const issuerUrl = issuer !== undefined && /^https?:\/\//.test(issuer) ? parseUrl(issuer) : null;
  const configured = reader.optionalString('PUBLIC_URL');
  const value =
    configured ?? issuerUrl?.origin ?? `${https ? 'https' : 'http'}://localhost:${port}`;
  const url = parseUrl(value);
  const secure =
    url?.protocol === 'https:' || (url?.protocol === 'http:' && LOOPBACK.has(url.hostname));
  // An origin only: no path, query, fragment or credentials.
  if (!url || !secure || url.href !== `${url.origin}/`) {
    const name =
      configured === undefined
        ? 'PUBLIC_URL (unset: the origin of ACCESS_TOKEN_ISSUER)'
        : 'PUBLIC_URL';
    reader.problem(
      `${name} must be an https origin without a path, such as https://api.example.com (http only for localhost); got ${JSON.stringify(value)}.`,
    );
    return value;
  }
  return url.origin;
}

function parseUrl(text: string): URL | null {
  try {
    return new URL(text);
  } catch {
    return null;
  }
}

const USER_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

/** `ADMIN_USER_IDS`: user ids separated by commas (spaces ignored); each a plain identifier. */
function readAdminUserIds(reader: EnvReader): string[] {
  const ids = reader
    .string('ADMIN_USER_IDS', '')
    .split(',')
    .map((id) => id.trim())
    .filter((id) => id.length > 0);
  const bad = ids.find((id) => !USER_ID.test(id));
  if (bad !== undefined) {
    reader.problem(
      `ADMIN_USER_IDS must be user ids separated by commas; ${JSON.stringify(bad)} is not one.`,
    );
  }
  return ids;
}

function devSecret(): string {
  return randomBytes(48).toString('base64url');
}
