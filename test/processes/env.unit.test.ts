import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvError, isInMemoryDemoMode, loadEnv } from '../../demo/env';
import { createRefreshRouter } from '../../src/adapters/express';
import {
  InlineTokenJobs,
  MemoryRefreshTokenRepository,
  MemoryVersionStore,
} from '../../src/adapters/memory';
import { OptionsError } from '../../src/domain/errors';
import { RotationService } from '../../src/rotation-service';
import { throwawayCertificate } from '../support/certificate';
import { parseDuration } from '../../startup/env-reader';
import { loadWorkerEnv } from '../../workers/env';

const SECRET = 'a'.repeat(32);
const REFRESH = `${'b'.repeat(40)},${'c'.repeat(32)}`;
const SERVICES = { MONGODB_URI: 'mongodb://db:27017/app', REDIS_URL: 'redis://cache:6379' };

function problemsOf(run: () => unknown): readonly string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof EnvError) return error.problems;
    throw error;
  }
  throw new Error('expected an EnvError');
}

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['10s', 10_000],
    ['15m', 900_000],
    ['12h', 43_200_000],
    ['30d', 2_592_000_000],
    ['1500', 1_500],
    ['1.5m', 90_000],
    ['2w', 1_209_600_000],
  ])('reads %s as %d ms', (text, expected) => {
    expect(parseDuration(text)).toBe(expected);
  });

  it.each(['', 'soon', '-5s', '10 parsecs', '1e3'])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeNull();
  });
});

describe('loadEnv', () => {
  it('applies every documented default with the services and secrets set', () => {
    const env = loadEnv({
      ...SERVICES,
      ACCESS_TOKEN_SECRET: SECRET,
      REFRESH_TOKEN_SECRETS: REFRESH,
    });
    expect(env).toMatchObject({
      nodeEnv: 'development',
      inMemoryDemo: false,
      devSecretsGenerated: false,
      accessToken: { algorithm: 'HS256', secret: SECRET, ttlMs: 15 * 60_000 },
      refreshToken: {
        secrets: ['b'.repeat(40), 'c'.repeat(32)],
        idleTtlMs: 30 * 86_400_000,
        absoluteTtlMs: 90 * 86_400_000,
        reuseGraceMs: 10_000,
      },
      queue: { prefix: '{rr}', touchWindowMs: 60_000 },
      http: {
        port: 3000,
        cookie: {
          transport: true,
          secure: true,
          name: '__Secure-refresh_token',
          csrfHeader: 'x-refresh-csrf',
        },
        rateLimit: { loginPerMinute: 10, accountPerHour: 20, tokenPerMinute: 60 },
      },
      logLevel: 'info',
    });
  });

  it('returns a deeply frozen object', () => {
    const env = loadEnv({
      ...SERVICES,
      ACCESS_TOKEN_SECRET: SECRET,
      REFRESH_TOKEN_SECRETS: REFRESH,
    });
    expect(Object.isFrozen(env)).toBe(true);
    expect(Object.isFrozen(env.refreshToken.secrets)).toBe(true);
    expect(Object.isFrozen(env.http.cookie)).toBe(true);
  });

  it('reports every invalid variable at once, by name', () => {
    const problems = problemsOf(() =>
      loadEnv({
        ...SERVICES,
        ACCESS_TOKEN_SECRET: 'short',
        REFRESH_TOKEN_SECRETS: 'tiny',
        ACCESS_TOKEN_TTL: 'soon',
        COOKIE_TRANSPORT: 'maybe',
        LOG_LEVEL: 'loud',
        QUEUE_PREFIX: 'rr:prod',
      }),
    );
    const names = [
      'ACCESS_TOKEN_SECRET',
      'REFRESH_TOKEN_SECRETS[0]',
      'ACCESS_TOKEN_TTL',
      'COOKIE_TRANSPORT',
      'LOG_LEVEL',
      'QUEUE_PREFIX',
    ];
    for (const name of names) expect(problems.some((p) => p.startsWith(name))).toBe(true);
    expect(problems).toHaveLength(names.length);
  });

  it('requires the token secrets outside the in-memory demo', () => {
    const problems = problemsOf(() => loadEnv(SERVICES));
    expect(problems.join('\n')).toMatch(/ACCESS_TOKEN_SECRET is required/);
    expect(problems.join('\n')).toMatch(/REFRESH_TOKEN_SECRETS is required/);
  });

  it('generates dev-only secrets in the in-memory demo', () => {
    const env = loadEnv({});
    expect(env.inMemoryDemo).toBe(true);
    expect(env.devSecretsGenerated).toBe(true);
    expect(Buffer.byteLength(env.accessToken.secret ?? '')).toBeGreaterThanOrEqual(32);
    expect(env.refreshToken.secrets).toHaveLength(1);
    expect(loadEnv({}).accessToken.secret).not.toBe(env.accessToken.secret);
  });

  it('refuses the in-memory demo with NODE_ENV=production', () => {
    expect(problemsOf(() => loadEnv({ NODE_ENV: 'production' })).join('\n')).toMatch(
      /in-memory demo mode is refused/,
    );
  });

  it('refuses REDIS_URL without MONGODB_URI', () => {
    const problems = problemsOf(() =>
      loadEnv({
        REDIS_URL: SERVICES.REDIS_URL,
        ACCESS_TOKEN_SECRET: SECRET,
        REFRESH_TOKEN_SECRETS: REFRESH,
      }),
    );
    expect(problems.join('\n')).toMatch(/REDIS_URL is set but MONGODB_URI is not/);
  });

  it('refuses an insecure cookie in production and a __Secure- name without Secure', () => {
    const base = { ...SERVICES, ACCESS_TOKEN_SECRET: SECRET, REFRESH_TOKEN_SECRETS: REFRESH };
    expect(
      problemsOf(() => loadEnv({ ...base, NODE_ENV: 'production', COOKIE_SECURE: 'false' })).join(
        '\n',
      ),
    ).toMatch(/COOKIE_SECURE=false is refused/);
    expect(
      problemsOf(() =>
        loadEnv({ ...base, COOKIE_SECURE: 'false', COOKIE_NAME: '__Secure-rt' }),
      ).join('\n'),
    ).toMatch(/browsers would drop it/);
    expect(loadEnv({ ...base, COOKIE_SECURE: 'false' }).http.cookie.name).toBe('refresh_token');
  });

  it('reads ADMIN_USER_IDS as a comma list (none by default) and names it when an id is not one', () => {
    const base = { ...SERVICES, ACCESS_TOKEN_SECRET: SECRET, REFRESH_TOKEN_SECRETS: REFRESH };
    expect(loadEnv(base).http.adminUserIds).toEqual([]);
    expect(loadEnv({ ...base, ADMIN_USER_IDS: ' u-1, 01a2:b ,,' }).http.adminUserIds).toEqual([
      'u-1',
      '01a2:b',
    ]);
    expect(
      problemsOf(() => loadEnv({ ...base, ADMIN_USER_IDS: 'u-1,<script>' })).join('\n'),
    ).toMatch(/ADMIN_USER_IDS must be user ids separated by commas; "<script>" is not one/);
  });

  it("reads PUBLIC_URL as an origin, by default the issuer's origin or http://localhost:<PORT>", () => {
    const base = { ...SERVICES, ACCESS_TOKEN_SECRET: SECRET, REFRESH_TOKEN_SECRETS: REFRESH };
    const publicUrl = (extra: Record<string, string>) =>
      loadEnv({ ...base, ...extra }).http.publicUrl;
    expect(publicUrl({})).toBe('http://localhost:3000');
    expect(publicUrl({ PORT: '8080' })).toBe('http://localhost:8080');
    expect(publicUrl({ ACCESS_TOKEN_ISSUER: 'https://id.example.com/tenant' })).toBe(
      'https://id.example.com',
    );
    expect(publicUrl({ ACCESS_TOKEN_ISSUER: 'refresh-rotation' })).toBe('http://localhost:3000');
    expect(publicUrl({ PUBLIC_URL: 'https://API.example.com:443/' })).toBe(
      'https://api.example.com',
    );
    expect(publicUrl({ PUBLIC_URL: 'http://127.0.0.1:4000' })).toBe('http://127.0.0.1:4000');
    for (const bad of [
      'http://api.example.com',
      'https://api.example.com/v1',
      'https://a.com/?x',
      'api.example.com',
    ])
      expect([bad, problemsOf(() => loadEnv({ ...base, PUBLIC_URL: bad })).join('\n')]).toEqual([
        bad,
        expect.stringMatching(/^PUBLIC_URL must be an https origin without a path/),
      ]);
    expect(
      problemsOf(() => loadEnv({ ...base, ACCESS_TOKEN_ISSUER: 'http://id.example.com' })).join(
        '\n',
      ),
    ).toMatch(/^PUBLIC_URL \(unset: the origin of ACCESS_TOKEN_ISSUER\) must be an https origin/);
  });

  it('takes an asymmetric key pair instead of a secret, with \\n standing for newlines', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const pem = (key: typeof privateKey) =>
      key
        .export({ format: 'pem', type: key.type === 'private' ? 'pkcs8' : 'spki' })
        .toString()
        .replace(/\n/g, '\\n');
    const env = loadEnv({
      ...SERVICES,
      REFRESH_TOKEN_SECRETS: REFRESH,
      ACCESS_TOKEN_ALGORITHM: 'EdDSA',
      ACCESS_TOKEN_PRIVATE_KEY: pem(privateKey),
      ACCESS_TOKEN_PUBLIC_KEY: pem(publicKey),
    });
    expect(env.accessToken).toMatchObject({ algorithm: 'EdDSA', secret: undefined });
    expect(env.accessToken.privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(
      problemsOf(() =>
        loadEnv({ ...SERVICES, REFRESH_TOKEN_SECRETS: REFRESH, ACCESS_TOKEN_ALGORITHM: 'RS256' }),
      ),
    ).toEqual([
      expect.stringMatching(/^ACCESS_TOKEN_PRIVATE_KEY is required/),
      expect.stringMatching(/^ACCESS_TOKEN_PUBLIC_KEY is required/),
    ]);
  });
});

describe('loadEnv: HTTPS (TLS_KEY_FILE, TLS_CERT_FILE) and DBSC', () => {
  const base = { ...SERVICES, ACCESS_TOKEN_SECRET: SECRET, REFRESH_TOKEN_SECRETS: REFRESH };
  const DBSC_SECRET = 'd'.repeat(32);
  let dir: string;
  let tls: { TLS_KEY_FILE: string; TLS_CERT_FILE: string };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rr-tls-'));
    const { keyFile, certFile } = throwawayCertificate(dir);
    tls = { TLS_KEY_FILE: keyFile, TLS_CERT_FILE: certFile };
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads both PEM files, and PUBLIC_URL then defaults to https://localhost:<PORT>', () => {
    const env = loadEnv({ ...base, ...tls, PORT: '8443' });
    expect(env.http.tls?.key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(env.http.tls?.cert).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
    expect(env.http.publicUrl).toBe('https://localhost:8443');
    expect(env.http.cookie.secure).toBe(true);
    expect(loadEnv(base).http.tls).toBeUndefined();
  });

  it('takes both TLS files or neither', () => {
    expect(problemsOf(() => loadEnv({ ...base, TLS_KEY_FILE: tls.TLS_KEY_FILE }))).toEqual([
      expect.stringMatching(/^TLS_KEY_FILE is set but TLS_CERT_FILE is not: set both/),
    ]);
    expect(problemsOf(() => loadEnv({ ...base, TLS_CERT_FILE: tls.TLS_CERT_FILE }))).toEqual([
      expect.stringMatching(/^TLS_CERT_FILE is set but TLS_KEY_FILE is not: set both/),
    ]);
  });

  it('names the variable whose file cannot be read, is not PEM, or does not match', () => {
    const missing = join(dir, 'missing.pem');
    expect(problemsOf(() => loadEnv({ ...base, ...tls, TLS_CERT_FILE: missing }))).toEqual([
      `TLS_CERT_FILE=${missing} cannot be read (ENOENT): it must name a readable PEM file.`,
    ]);
    expect(problemsOf(() => loadEnv({ ...base, ...tls, TLS_KEY_FILE: dir }))).toEqual([
      `TLS_KEY_FILE=${dir} cannot be read (EISDIR): it must name a readable PEM file.`,
    ]);
    const text = join(dir, 'not-pem.txt');
    writeFileSync(text, 'hello');
    expect(problemsOf(() => loadEnv({ ...base, ...tls, TLS_KEY_FILE: text }))).toEqual([
      `TLS_KEY_FILE=${text} is not a PEM file (no -----BEGIN …----- line).`,
    ]);
    const other = mkdtempSync(join(dir, 'other-'));
    const { keyFile } = throwawayCertificate(other);
    expect(problemsOf(() => loadEnv({ ...base, ...tls, TLS_KEY_FILE: keyFile }))).toEqual([
      expect.stringMatching(/^TLS_KEY_FILE and TLS_CERT_FILE do not make a TLS key pair/),
    ]);
  });

  it('is off by default; DBSC=true with HTTPS reads DBSC_SECRET and DBSC_BOUND_TTL (default 10m)', () => {
    expect(loadEnv({ ...base, ...tls }).http.cookie.dbsc).toBeUndefined();
    const env = loadEnv({ ...base, ...tls, DBSC: 'true', DBSC_SECRET });
    expect(env.http.cookie.dbsc).toEqual({ secret: DBSC_SECRET, boundTtlMs: 600_000 });
    expect(env.devSecretsGenerated).toBe(false);
    expect(
      loadEnv({ ...base, ...tls, DBSC: 'on', DBSC_SECRET, DBSC_BOUND_TTL: '5m' }).http.cookie.dbsc
        ?.boundTtlMs,
    ).toBe(300_000);
    // Behind a TLS terminator: an https PUBLIC_URL is HTTPS enough.
    expect(
      loadEnv({ ...base, DBSC: 'true', DBSC_SECRET, PUBLIC_URL: 'https://app.example.com' }).http
        .cookie.dbsc,
    ).toBeDefined();
  });

  it('refuses a DBSC secret under 32 bytes and a bound lifetime under 5m, by name', () => {
    expect(
      problemsOf(() =>
        loadEnv({
          ...base,
          ...tls,
          DBSC: 'true',
          DBSC_SECRET: 'd'.repeat(31),
          DBSC_BOUND_TTL: '299s',
        }),
      ),
    ).toEqual([
      'DBSC_SECRET must be at least 32 bytes; got 31.',
      'DBSC_BOUND_TTL must be at least 5m (Chromium refreshes a cookie by proof on every request in its last 2 minutes, and signs at most 6 times per 9 minutes); got "299s".',
    ]);
    expect(
      problemsOf(() =>
        loadEnv({ ...base, ...tls, DBSC: 'true', DBSC_SECRET, DBSC_BOUND_TTL: 'x' }),
      ),
    ).toEqual([expect.stringMatching(/^DBSC_BOUND_TTL must be a duration/)]);
    expect(problemsOf(() => loadEnv({ ...base, ...tls, DBSC: 'true' }))).toEqual([
      expect.stringMatching(/^DBSC_SECRET is required with DBSC=true/),
    ]);
  });

  it('accepts exactly what the router accepts as cookie.dbsc', () => {
    const repository = new MemoryRefreshTokenRepository();
    const service = new RotationService({
      repository,
      versions: new MemoryVersionStore(),
      jobs: new InlineTokenJobs(repository),
      accessToken: { secret: SECRET },
      refreshToken: { secrets: [REFRESH.split(',')[0]!] },
    });
    const router = (secret: string, boundTtl: number) => () =>
      createRefreshRouter({ service, cookie: { dbsc: { secret, boundTtl } } });
    const env = (secret: string, ttl: string) => () =>
      loadEnv({ ...base, ...tls, DBSC: 'true', DBSC_SECRET: secret, DBSC_BOUND_TTL: ttl });
    expect(router('d'.repeat(32), 300_000)).not.toThrow();
    expect(env('d'.repeat(32), '300s')).not.toThrow();
    expect(router('d'.repeat(31), 300_000)).toThrow(OptionsError);
    expect(env('d'.repeat(31), '300s')).toThrow(EnvError);
    expect(router('d'.repeat(32), 299_999)).toThrow(OptionsError);
    expect(env('d'.repeat(32), '299999ms')).toThrow(EnvError);
  });

  it('needs HTTPS, the cookie transport and a Secure cookie for DBSC', () => {
    const problems = problemsOf(() =>
      loadEnv({ ...base, DBSC: 'true', DBSC_SECRET, COOKIE_TRANSPORT: 'false' }),
    );
    expect(problems).toEqual([
      expect.stringMatching(/^DBSC=true needs COOKIE_TRANSPORT=true/),
      expect.stringMatching(/^DBSC=true needs HTTPS: set TLS_KEY_FILE and TLS_CERT_FILE/),
    ]);
    expect(
      problemsOf(() =>
        loadEnv({ ...base, ...tls, DBSC: 'true', DBSC_SECRET, COOKIE_SECURE: 'no' }),
      ),
    ).toEqual([expect.stringMatching(/^DBSC=true needs COOKIE_SECURE=true/)]);
    expect(problemsOf(() => loadEnv({ ...base, DBSC_SECRET }))).toEqual([
      'DBSC_SECRET is set but DBSC is not on: set DBSC=true, or unset DBSC_SECRET.',
    ]);
  });

  it('generates the DBSC secret in the in-memory demo, and requires a random one in production', () => {
    const env = loadEnv({ ...tls, DBSC: 'true' });
    expect(env.devSecretsGenerated).toBe(true);
    expect(Buffer.byteLength(env.http.cookie.dbsc?.secret ?? '')).toBeGreaterThanOrEqual(32);
    expect(loadEnv({ ...tls, DBSC: 'true' }).http.cookie.dbsc?.secret).not.toBe(
      env.http.cookie.dbsc?.secret,
    );
    expect(
      problemsOf(() =>
        loadEnv({
          ...base,
          ...tls,
          NODE_ENV: 'production',
          ACCESS_TOKEN_SECRET: 'p0Vb3yQ9rXh2LmT8wKc5NsJ1dGf7ZaE4uRiO6tYq',
          REFRESH_TOKEN_SECRETS: 'Hk3Jw9Qm2Xv7Lp5Rt8Ns1Bc4Dz6Fy0Ga3Ue5Io7P',
          DBSC: 'true',
          DBSC_SECRET: 'change-me-change-me-change-me-change-me',
        }),
      ),
    ).toEqual([expect.stringMatching(/^DBSC_SECRET is a placeholder or development secret/)]);
  });
});

describe('loadEnv with NODE_ENV=production', () => {
  const production = { ...SERVICES, NODE_ENV: 'production' };
  const random = (n: number) =>
    Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + 11) % 251)).toString('base64');

  it("refuses docker-compose.yml's placeholder secrets, naming each variable", () => {
    const problems = problemsOf(() =>
      loadEnv({
        ...production,
        ACCESS_TOKEN_SECRET: 'compose-local-only-access-secret-0123456789abcdef',
        REFRESH_TOKEN_SECRETS: `${random(48)},compose-local-only-refresh-secret-0123456789abcdef`,
      }),
    );
    expect(problems).toEqual([
      expect.stringMatching(/^ACCESS_TOKEN_SECRET is a placeholder or development secret/),
      expect.stringMatching(/^REFRESH_TOKEN_SECRETS\[1\] is a placeholder or development secret/),
    ]);
  });

  it('refuses obvious development secrets', () => {
    for (const secret of [
      SECRET,
      'change-me-change-me-change-me-change-me',
      'placeholder'.repeat(3),
    ]) {
      expect(
        problemsOf(() =>
          loadEnv({
            ...production,
            ACCESS_TOKEN_SECRET: secret,
            REFRESH_TOKEN_SECRETS: random(48),
          }),
        ).join('\n'),
      ).toMatch(/ACCESS_TOKEN_SECRET is a placeholder/);
    }
  });

  it('accepts random secrets, and the placeholders outside production', () => {
    expect(
      loadEnv({ ...production, ACCESS_TOKEN_SECRET: random(48), REFRESH_TOKEN_SECRETS: random(40) })
        .isProduction,
    ).toBe(true);
    expect(
      loadEnv({
        ...SERVICES,
        ACCESS_TOKEN_SECRET: 'compose-local-only-access-secret-0123456789abcdef',
        REFRESH_TOKEN_SECRETS: 'compose-local-only-refresh-secret-0123456789abcdef',
      }).isProduction,
    ).toBe(false);
  });
});

describe('isInMemoryDemoMode', () => {
  it('is true only when neither MONGODB_URI nor REDIS_URL is set', () => {
    expect(isInMemoryDemoMode({})).toBe(true);
    expect(isInMemoryDemoMode({ MONGODB_URI: ' ' })).toBe(true);
    expect(isInMemoryDemoMode({ MONGODB_URI: SERVICES.MONGODB_URI })).toBe(false);
    expect(isInMemoryDemoMode({ REDIS_URL: SERVICES.REDIS_URL })).toBe(false);
  });
});

describe('loadWorkerEnv', () => {
  it('requires MONGODB_URI and REDIS_URL with a message that says what to set', () => {
    expect(problemsOf(() => loadWorkerEnv({}))).toEqual([
      expect.stringMatching(/^MONGODB_URI is required by the worker \(e\.g\. mongodb:\/\//),
      expect.stringMatching(/^REDIS_URL is required by the worker \(e\.g\. redis:\/\//),
    ]);
  });

  it('does not need the token secrets', () => {
    const env = loadWorkerEnv({ ...SERVICES, WORKER_HEALTH_PORT: '0', CLEANUP_BATCH_SIZE: '500' });
    expect(env).toMatchObject({ mongodbUri: SERVICES.MONGODB_URI, redisUrl: SERVICES.REDIS_URL });
    expect(env.worker.healthPort).toBe(0);
    expect(env.cleanup.batchSize).toBe(500);
  });

  it('applies every documented default', () => {
    expect(loadWorkerEnv(SERVICES)).toMatchObject({
      queue: { prefix: '{rr}', touchWindowMs: 60_000 },
      worker: {
        concurrency: 10,
        shutdownTimeoutMs: 25_000,
        healthPort: undefined,
        lockDurationMs: 30_000,
        startupTimeoutMs: 120_000,
      },
      cleanup: { cron: '*/10 * * * *', retentionMs: 7 * 86_400_000, batchSize: 1_000 },
      logLevel: 'info',
    });
  });

  it('reports every invalid variable at once, by name', () => {
    const problems = problemsOf(() =>
      loadWorkerEnv({
        ...SERVICES,
        WORKER_CONCURRENCY: '0',
        WORKER_STARTUP_TIMEOUT: 'never',
        LOG_LEVEL: 'loud',
        QUEUE_PREFIX: 'rr:prod',
      }),
    );
    const names = ['WORKER_CONCURRENCY', 'WORKER_STARTUP_TIMEOUT', 'LOG_LEVEL', 'QUEUE_PREFIX'];
    for (const name of names) expect(problems.some((p) => p.startsWith(name))).toBe(true);
    expect(problems).toHaveLength(names.length);
  });

  it('validates CLEANUP_CRON as BullMQ reads it, naming the variable', () => {
    const problems = problemsOf(() =>
      loadWorkerEnv({ ...SERVICES, CLEANUP_CRON: '99 99 99 99 99' }),
    );
    expect(problems).toEqual([expect.stringMatching(/^CLEANUP_CRON must be a cron pattern/)]);
    expect(problems[0]).toMatch(/"99 99 99 99 99"/);
    for (const cron of ['@hourly', '@daily', '0 */6 * * *', '*/30 * * * * *']) {
      expect(loadWorkerEnv({ ...SERVICES, CLEANUP_CRON: cron }).cleanup.cron).toBe(cron);
    }
  });

  it('refuses URLs of the wrong scheme', () => {
    expect(
      problemsOf(() => loadWorkerEnv({ MONGODB_URI: 'http://db', REDIS_URL: 'mongodb://x' })),
    ).toEqual([
      'MONGODB_URI must be a URL starting with mongodb:// or mongodb+srv://.',
      'REDIS_URL must be a URL starting with redis:// or rediss://.',
    ]);
  });
});

describe('.env.example and .env', () => {
  const ROOT = join(__dirname, '..', '..');

  /** What `set -a; . ./.env.example` exports, as a shell reads it. */
  function sourcedByShell(): Record<string, string> {
    const out = execFileSync(
      'sh',
      [
        '-c',
        'set -a; . ./.env.example; set +a; node -e "process.stdout.write(JSON.stringify(process.env))"',
      ],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? '' }, encoding: 'utf8' },
    );
    const env = JSON.parse(out) as Record<string, string>;
    delete env.PATH;
    delete env.PWD;
    delete env.SHLVL;
    delete env._;
    return env;
  }

  it('is shell-sourceable and reads the same through node --env-file', () => {
    const shell = sourcedByShell();
    expect(shell.CLEANUP_CRON).toBe('*/10 * * * *');
    const dir = mkdtempSync(join(tmpdir(), 'rr-env-'));
    try {
      copyFileSync(join(ROOT, '.env.example'), join(dir, '.env'));
      const out = execFileSync(
        process.execPath,
        ['--env-file', '.env', '-e', 'process.stdout.write(JSON.stringify(process.env))'],
        { cwd: dir, env: {}, encoding: 'utf8' },
      );
      const node = JSON.parse(out) as Record<string, string>;
      for (const [name, value] of Object.entries(shell))
        expect([name, node[name]]).toEqual([name, value]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("states the code's defaults", () => {
    const shell = sourcedByShell();
    const secrets = { ACCESS_TOKEN_SECRET: SECRET, REFRESH_TOKEN_SECRETS: REFRESH };
    const services = { MONGODB_URI: shell.MONGODB_URI, REDIS_URL: shell.REDIS_URL };
    expect(loadEnv({ ...shell, ...secrets })).toEqual(loadEnv({ ...services, ...secrets }));
    expect(loadWorkerEnv(shell)).toEqual(loadWorkerEnv(services));
  });

  it('loads .env when present; variables already set win', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rr-env-'));
    // In a process of its own: jest gives each test file a copy of process.env.
    const run = () =>
      JSON.parse(
        execFileSync(
          process.execPath,
          [
            '--import',
            'tsx',
            '-e',
            `const { loadDotEnv } = require('./startup/env-reader.ts');
             const path = loadDotEnv(${JSON.stringify(dir)});
             process.stdout.write(JSON.stringify({ path, fromFile: process.env.RR_FROM_FILE ?? null, alreadySet: process.env.RR_ALREADY_SET }));`,
          ],
          {
            cwd: ROOT,
            env: { PATH: process.env.PATH ?? '', RR_ALREADY_SET: 'environment' },
            encoding: 'utf8',
          },
        ),
      ) as Record<string, string | null>;
    try {
      expect(run()).toEqual({ path: null, fromFile: null, alreadySet: 'environment' });
      writeFileSync(join(dir, '.env'), 'RR_FROM_FILE=file\nRR_ALREADY_SET=file\n');
      expect(run()).toEqual({
        path: join(dir, '.env'),
        fromFile: 'file',
        alreadySet: 'environment',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
