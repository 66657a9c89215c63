/**
 * The package as a user installs it: `npm run build`, `npm pack` once, then the tarball installed
 * (from the npm cache, with the peers at this repository's locked versions) into a throwaway
 * CommonJS project and a throwaway ES module project. Every check below runs against those
 * installs, never against `src/`: imports of every subpath in both formats, TypeScript consumers
 * (node16 and bundler resolution), the docs/express.md snippet compiled and run, the error → HTTP
 * mapping over real HTTP, the worker bin against the test Redis and MongoDB, publint and attw.
 */
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import mongoose from 'mongoose';
import { BullMQTokenJobs } from '../../src/adapters/bullmq';
import { MongooseRefreshTokenRepository, MongooseVersionStore } from '../../src/adapters/mongoose';
import { RotationService } from '../../src/rotation-service';
import { mongoUri, redisUrl, uniqueName } from '../support/services';
import { databaseUri, uniquePrefix } from '../support/worker-process';
import { waitFor } from '../support/wait-for';
import { groupAlive } from '../support/process-group';
import { freePort } from '../support/servers';
import { run, runOk, startBackground, type Background } from './support';

jest.setTimeout(180_000);

const ROOT = join(__dirname, '..', '..');
const FIXTURES = join(__dirname, 'fixtures');
const BIN = join(ROOT, 'node_modules', '.bin');
const PEERS = [
  'express',
  'mongoose',
  'bullmq',
  'ioredis',
  'prom-client',
  '@types/express',
  '@types/node',
];
type Format = 'cjs' | 'esm';
const FORMATS: readonly Format[] = ['cjs', 'esm'];

/** The public runtime exports of each entry point: adding one is a decision, so it shows here. */
const PUBLIC_EXPORTS: Record<string, string[]> = {
  'refresh-rotation': [
    'ACCESS_TOKEN_ALGORITHMS',
    'ConflictError',
    'InvalidAccessTokenError',
    'InvalidDpopProofError',
    'InvalidGrantError',
    'InvalidRequestError',
    'MIN_ACCESS_SECRET_BYTES',
    'MIN_SECRET_BYTES',
    'MalformedTokenError',
    'NotFoundError',
    'OptionsError',
    'RefreshRotationError',
    'RotationService',
    'StoreUnavailableError',
    'TOKEN_PREFIX',
    'UnsupportedGrantTypeError',
    'UseDpopNonceError',
    'hashToken',
    'isRefreshRotationError',
    'parseDuration',
    'systemClock',
  ],
  'refresh-rotation/memory': [
    'InlineTokenJobs',
    'MemoryDPoPReplayCache',
    'MemoryRefreshTokenRepository',
    'MemoryRevocationBus',
    'MemoryVersionStore',
  ],
  'refresh-rotation/mongoose': [
    'MongooseRefreshTokenRepository',
    'MongooseVersionStore',
    'isDuplicateKeyError',
    'isUnavailableError',
    'reopenWhenMonitorStuck',
    'toStoreError',
  ],
  'refresh-rotation/bullmq': [
    'BullMQTokenJobs',
    'CLEANUP_SCHEDULER_ID',
    'DEFAULT_QUEUE_PREFIX',
    'JOB_NAMES',
    'QUEUE_NAMES',
  ],
  'refresh-rotation/express': [
    'DBSC_MIN_BOUND_TTL_MS',
    'DPOP_ALGORITHMS',
    'asyncHandler',
    'authenticate',
    'authorizationServerMetadata',
    'clientInfoFrom',
    'createDPoPVerifier',
    'createRefreshRouter',
    'errorHandler',
    'sendError',
    'setNoStore',
    'toHttpError',
  ],
  'refresh-rotation/redis': [
    'DEFAULT_DPOP_REPLAY_PREFIX',
    'DEFAULT_REVOCATION_CHANNEL',
    'RedisDPoPReplayCache',
    'RedisRevocationBus',
  ],
  'refresh-rotation/worker': [
    'CLEANUP_SCHEDULER_ID',
    'DEFAULT_CLEANUP',
    'JOB_NAMES',
    'QUEUE_NAMES',
    'TouchBatcher',
    'createCleanupProcessor',
    'createRevokeAllProcessor',
    'createTouchProcessor',
    'runCleanup',
    'startTokenWorkers',
    'upsertCleanupScheduler',
  ],
  'refresh-rotation/metrics': ['createRefreshMetrics', 'createWorkerMetrics'],
  'refresh-rotation/client': ['createSessionClient'],
};
/** The browser module's budget, minified and gzipped as a page's bundle carries it (issue 25). */
const CLIENT_BUDGET_BYTES = 4_096;

let work: string;
let tarball: string;
const consumers = {} as Record<Format, string>;
const started: Background[] = [];

/** The versions this repository is locked to, so the installs come from the npm cache. */
function lockedVersion(name: string): string {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string }>;
  };
  const version = lock.packages[`node_modules/${name}`]?.version;
  if (!version) throw new Error(`${name} is not in package-lock.json`);
  return version;
}

async function createConsumer(format: Format): Promise<string> {
  const dir = join(work, format);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({
      name: `refresh-rotation-${format}-consumer`,
      private: true,
      type: format === 'esm' ? 'module' : 'commonjs',
    }),
  );
  for (const file of readdirSync(FIXTURES)) copyFileSync(join(FIXTURES, file), join(dir, file));
  copyFileSync(join(ROOT, 'examples', 'existing-app.ts'), join(dir, 'app.ts'));
  await runOk(
    'npm',
    [
      'install',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      '--loglevel=error',
      tarball,
      ...PEERS.map((name) => `${name}@${lockedVersion(name)}`),
    ],
    { cwd: dir, timeoutMs: 150_000 },
  );
  return dir;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'refresh-rotation-package-'));
  await runOk('npm', ['run', 'build'], { cwd: ROOT, timeoutMs: 150_000 });
  const packed = await runOk('npm', ['pack', '--json', '--pack-destination', work], {
    cwd: ROOT,
  });
  const [info] = JSON.parse(packed.stdout) as [{ filename: string }];
  tarball = join(work, info.filename);
  const [cjs, esm] = await Promise.all(FORMATS.map(createConsumer));
  consumers.cjs = cjs as string;
  consumers.esm = esm as string;
}, 300_000);

afterAll(async () => {
  await Promise.all(started.map((background) => background.stop(2_000)));
  if (work) rmSync(work, { recursive: true, force: true });
});

/** tsc for a consumer, run once per config however many tests ask. */
const compiled = new Map<string, Promise<void>>();
function typecheck(format: Format, config: 'node16' | 'bundler'): Promise<void> {
  const key = `${format}:${config}`;
  let pending = compiled.get(key);
  if (!pending) {
    pending = runOk(process.execPath, [join(BIN, 'tsc'), '-p', `tsconfig.${config}.json`], {
      cwd: consumers[format],
    }).then(() => undefined);
    compiled.set(key, pending);
  }
  return pending;
}

function nodeEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...extra };
}

function secret(): string {
  return randomBytes(48).toString('base64url');
}

function startInConsumer(format: Format, args: string[], env: Record<string, string>) {
  const background = startBackground(process.execPath, args, {
    cwd: consumers[format],
    env: nodeEnv(env),
  });
  started.push(background);
  return background;
}

async function stopCleanly(background: Background): Promise<void> {
  const exit = await background.stop();
  expect(exit.signal === 'SIGKILL').toBe(false);
  expect(groupAlive(background.pid)).toBe(false);
}

describe('the packed package', () => {
  it('installs with every file an entry point names, and one copy of each class per format', () => {
    const dist = join(consumers.cjs, 'node_modules', 'refresh-rotation', 'dist');
    const files = readdirSync(dist, { recursive: true }) as string[];
    const defining = files.filter(
      (file) =>
        /\.m?js$/.test(file) &&
        !file.startsWith('bin') &&
        readFileSync(join(dist, file), 'utf8').includes('RefreshRotationError = class'),
    );
    expect(defining.filter((file) => file.endsWith('.mjs'))).toHaveLength(1);
    expect(defining.filter((file) => file.endsWith('.js'))).toHaveLength(1);
    const installed = join(consumers.cjs, 'node_modules', 'refresh-rotation');
    for (const file of ['LICENSE', 'README.md', 'docs/express.md', 'docs/worker.md']) {
      expect(readFileSync(join(installed, file), 'utf8').length).toBeGreaterThan(100);
    }
  });

  it('ships docs whose relative links all land on files in the package', () => {
    const installed = join(consumers.cjs, 'node_modules', 'refresh-rotation');
    const docs = [
      'README.md',
      ...readdirSync(join(installed, 'docs')).map((file) => `docs/${file}`),
    ];
    const missing: string[] = [];
    let checked = 0;
    for (const doc of docs.filter((file) => file.endsWith('.md'))) {
      const text = readFileSync(join(installed, doc), 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^(?:[a-z]+:|#)/.test(target!)) continue; // a URL or an anchor on the same page
        checked += 1;
        const path = join(installed, doc, '..', target!.split('#')[0]!);
        if (!existsSync(path)) missing.push(`${doc} -> ${target}`);
      }
    }
    expect(checked).toBeGreaterThan(10);
    expect(missing).toEqual([]);
  });

  it.each(FORMATS)(
    'every subpath loads in %s with the public exports, and library errors map to 400/503',
    async (format) => {
      const script = format === 'cjs' ? 'imports.cjs' : 'imports.mjs';
      const { stdout } = await runOk(process.execPath, [script], { cwd: consumers[format] });
      const report = JSON.parse(stdout) as Record<string, unknown>;
      expect(report.exports).toEqual(PUBLIC_EXPORTS);
      expect(report).toMatchObject({
        invalidGrant: 400,
        storeUnavailable: 503,
        sameClassAcrossSubpaths: true,
        branded: true,
        dpopProofAccepted: true,
      });
      if (format === 'esm') expect(report.esmErrorThroughCommonJs).toBe(400);
    },
  );

  it('type-checks for TypeScript users: node16 from CommonJS and from ESM, and bundler', async () => {
    await Promise.all([
      typecheck('cjs', 'node16'),
      typecheck('esm', 'node16'),
      typecheck('esm', 'bundler'),
    ]);
  });

  it('passes publint and attw (are the types wrong) on the packed tarball', async () => {
    const installed = join(consumers.cjs, 'node_modules', 'refresh-rotation');
    const publint = await run(
      process.execPath,
      [join(BIN, 'publint'), installed, '--pack', 'false', '--strict'],
      {
        cwd: ROOT,
      },
    );
    expect(`${publint.stdout}${publint.stderr}`).toContain('All good!');
    expect(publint.code).toBe(0);
    const attw = await run(process.execPath, [join(BIN, 'attw'), tarball, '--format', 'ascii'], {
      cwd: ROOT,
    });
    expect(`${attw.stdout}${attw.stderr}`).toContain('No problems found');
    expect(attw.code).toBe(0);
  });
});

describe('refresh-rotation/client in a browser bundle', () => {
  it(`bundles from the installed package with esbuild, for the browser, under ${CLIENT_BUDGET_BYTES} bytes min+gzip`, async () => {
    const page = join(consumers.esm, 'page.mjs');
    writeFileSync(
      page,
      "import { createSessionClient } from 'refresh-rotation/client';\n" +
        'createSessionClient({ onChange: (change) => console.log(change.state) });\n',
    );
    const result = await build({
      entryPoints: [page],
      absWorkingDir: consumers.esm,
      bundle: true,
      minify: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2020',
      write: false,
      logLevel: 'silent',
    });
    const [bundle] = result.outputFiles;
    const code = bundle!.text;
    const gzipped = gzipSync(code, { level: 9 }).length;
    console.log(
      `refresh-rotation/client: ${code.length} bytes minified, ${gzipped} bytes min+gzip (budget ${CLIENT_BUDGET_BYTES})`,
    );
    // Nothing of Node and nothing of the server entries came along.
    expect(code).not.toMatch(/require\(|node:|RefreshRotationError|jsonwebtoken/);
    expect(gzipped).toBeLessThan(CLIENT_BUDGET_BYTES);
  });
});

describe('docs/express.md', () => {
  it('shows examples/existing-app.ts exactly as the file is', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'express.md'), 'utf8');
    const marker = '<!-- snippet: examples/existing-app.ts -->\n```ts\n';
    const start = doc.indexOf(marker);
    expect(start).toBeGreaterThan(0);
    const body = doc.slice(start + marker.length, doc.indexOf('```\n', start + marker.length));
    expect(body).toBe(readFileSync(join(ROOT, 'examples', 'existing-app.ts'), 'utf8'));
  });

  it.each(FORMATS)(
    'its app, compiled as %s against the package, logs in by body and by cookie, refreshes and revokes on a password change',
    async (format) => {
      await typecheck(format, 'node16');
      const port = await freePort();
      const app = startInConsumer(format, ['build/app.js'], {
        MONGODB_URI: databaseUri(mongoUri(), uniqueName(`pkg_snippet_${format}`)),
        REDIS_URL: redisUrl(),
        QUEUE_PREFIX: uniquePrefix(`pkg_snippet_${format}`),
        ACCESS_TOKEN_SECRET: secret(),
        REFRESH_TOKEN_SECRETS: secret(),
        PORT: String(port),
      });
      await app.waitFor(/^listening on /);
      const base = `http://127.0.0.1:${port}`;
      const credentials = JSON.stringify({ email: 'alice@example.com', password: 'correct horse' });
      const json = { 'content-type': 'application/json' };

      const wrong = await fetch(`${base}/auth/login`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ email: 'alice@example.com', password: 'wrong' }),
      });
      expect(wrong.status).toBe(401);

      const login = await fetch(`${base}/auth/login`, {
        method: 'POST',
        headers: json,
        body: credentials,
      });
      expect(login.status).toBe(200);
      const tokens = (await login.json()) as { access_token: string; refresh_token: string };
      expect(tokens.refresh_token).toMatch(/^rt_/);

      const me = await fetch(`${base}/me`, {
        headers: { authorization: `Bearer ${tokens.access_token}` },
      });
      expect(me.status).toBe(200);
      expect(await me.json()).toEqual({ id: 'user-1' });

      // A browser: the refresh token comes back as a cookie scoped to the router, never in the body.
      const cookieLogin = await fetch(`${base}/auth/login`, {
        method: 'POST',
        headers: { ...json, 'x-token-transport': 'cookie' },
        body: credentials,
      });
      expect(cookieLogin.status).toBe(200);
      expect(await cookieLogin.json()).not.toHaveProperty('refresh_token');
      const setCookie = cookieLogin.headers.get('set-cookie') ?? '';
      expect(setCookie).toMatch(/^__Secure-refresh_token=rt_[^;]+; Max-Age=\d+; Path=\/auth; /);
      expect(setCookie).toMatch(/HttpOnly/);
      expect(setCookie).toMatch(/SameSite=Strict/);
      const cookie = setCookie.split(';')[0] as string;
      const cookieRefresh = await fetch(`${base}/auth/token`, {
        method: 'POST',
        headers: {
          cookie,
          'x-refresh-csrf': '1',
          'x-token-transport': 'cookie',
          origin: base,
        },
      });
      expect(cookieRefresh.status).toBe(200);

      const refreshed = await fetch(`${base}/auth/token`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ refresh_token: tokens.refresh_token }),
      });
      expect(refreshed.status).toBe(200);
      const next = (await refreshed.json()) as { access_token: string; refresh_token: string };

      const change = await fetch(`${base}/auth/password`, {
        method: 'POST',
        headers: { ...json, authorization: `Bearer ${next.access_token}` },
        body: JSON.stringify({ current: 'correct horse', next: 'battery staple' }),
      });
      expect(change.status).toBe(204);
      const afterChange = await fetch(`${base}/auth/token`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ refresh_token: next.refresh_token }),
      });
      expect(afterChange.status).toBe(400);
      expect(await afterChange.json()).toMatchObject({ error: 'invalid_grant' });

      await stopCleanly(app);
      expect(app.output().stderr).toBe('');
    },
  );
});

describe('error mapping through the installed package, over HTTP', () => {
  it.each(FORMATS)(
    '%s: forged refresh → 400 invalid_grant, bad bearer → 401, store down → 503, never 500',
    async (format) => {
      const port = await freePort();
      const server = startInConsumer(format, [format === 'cjs' ? 'server.cjs' : 'server.mjs'], {
        MONGODB_URI: databaseUri(mongoUri(), uniqueName(`pkg_errors_${format}`)),
        DOWN_MONGODB_URI: `mongodb://127.0.0.1:${await freePort()}/down`,
        ACCESS_TOKEN_SECRET: secret(),
        REFRESH_TOKEN_SECRET: secret(),
        PORT: String(port),
      });
      await server.waitFor(/^listening$/);
      const base = `http://127.0.0.1:${port}`;
      const post = (path: string, body: object) =>
        fetch(`${base}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });

      const login = await fetch(`${base}/login`, { method: 'POST' });
      expect(login.status).toBe(200);
      const { refresh_token: token } = (await login.json()) as { refresh_token: string };
      // Same session and generation, one bit of the MAC flipped: it passes the tag, reaches the
      // database and is refused there as forged.
      const raw = Buffer.from(token.slice(3), 'base64url');
      raw[raw.length - 1] = (raw[raw.length - 1] as number) ^ 1;
      const forged = `rt_${raw.toString('base64url')}`;

      const answers = {
        forged: await post('/auth/token', { refresh_token: forged }),
        badBearer: await fetch(`${base}/auth/sessions`, {
          headers: { authorization: 'Bearer not.a.jwt' },
        }),
        storeDown: await post('/down/token', { refresh_token: token }),
        thrownStore: await fetch(`${base}/thrown/store`),
        thrownGrant: await fetch(`${base}/thrown/grant`),
      };
      const statuses = Object.fromEntries(
        Object.entries(answers).map(([name, answer]) => [name, answer.status]),
      );
      expect(statuses).toEqual({
        forged: 400,
        badBearer: 401,
        storeDown: 503,
        thrownStore: 503,
        thrownGrant: 400,
      });
      expect(await answers.forged.json()).toMatchObject({ error: 'invalid_grant' });
      expect(await answers.badBearer.json()).toMatchObject({ error: 'invalid_token' });
      expect(await answers.storeDown.json()).toMatchObject({ error: 'temporarily_unavailable' });
      expect(answers.storeDown.headers.get('retry-after')).toBe('5');
      // The token is still good: the forged one changed nothing.
      expect((await post('/auth/token', { refresh_token: token })).status).toBe(200);

      await stopCleanly(server);
      expect(server.output().stderr).not.toMatch(/request failed|at .*\(.*:\d+:\d+\)/);
    },
  );
});

describe('the installed worker bin', () => {
  it('starts on the test Redis and MongoDB, processes a revoke-all job and stops on SIGTERM', async () => {
    const prefix = uniquePrefix('pkg_worker');
    const uri = databaseUri(mongoUri(), uniqueName('pkg_worker'));
    const worker = startBackground(
      join(consumers.cjs, 'node_modules', '.bin', 'refresh-rotation-worker'),
      [],
      {
        cwd: work,
        env: nodeEnv({
          MONGODB_URI: uri,
          REDIS_URL: redisUrl(),
          QUEUE_PREFIX: prefix,
          WORKER_HEALTH_PORT: '0',
          WORKER_SHUTDOWN_TIMEOUT: '10s',
          LOG_LEVEL: 'info',
        }),
      },
    );
    started.push(worker);
    const ready = JSON.parse(await worker.waitFor(/"msg":"worker ready"/)) as {
      healthPort: number;
    };
    const health = await fetch(`http://127.0.0.1:${ready.healthPort}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({
      status: 'ok',
      redis: 'ready',
      mongodb: 'connected',
    });

    const connection = await mongoose.createConnection(uri).asPromise();
    const jobs = new BullMQTokenJobs({ connection: redisUrl(), prefix });
    try {
      const repository = new MongooseRefreshTokenRepository(connection);
      const service = new RotationService({
        repository,
        versions: new MongooseVersionStore(connection),
        jobs,
        accessToken: { secret: secret() },
        refreshToken: { secrets: [secret()] },
      });
      const session = await service.issue({ userId: 'user-1' });
      await service.revokeAllForUser('user-1', 'password_changed');
      await worker.waitFor(/"msg":"revoke-all done"/);
      const record = await waitFor(
        async () => {
          const found = await repository.findBySessionId(session.sessionId);
          return found?.revokedAt ? found : undefined;
        },
        { what: 'the record revoked by the worker' },
      );
      expect(record.revokedReason).toBe('password_changed');
    } finally {
      await jobs.close();
      await connection.close();
    }

    const exit = await worker.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(worker.output().stdout).toMatch(/"msg":"stopped"/);
    expect(groupAlive(worker.pid)).toBe(false);
  });

  it('runs without the optional prom-client: health answers, /metrics does not, and the log says what to install', async () => {
    const promClient = join(consumers.cjs, 'node_modules', 'prom-client');
    const hidden = `${promClient}.hidden`;
    renameSync(promClient, hidden);
    try {
      const worker = startBackground(
        join(consumers.cjs, 'node_modules', '.bin', 'refresh-rotation-worker'),
        [],
        {
          cwd: work,
          env: nodeEnv({
            MONGODB_URI: databaseUri(mongoUri(), uniqueName('pkg_nometrics')),
            REDIS_URL: redisUrl(),
            QUEUE_PREFIX: uniquePrefix('pkg_nometrics'),
            WORKER_HEALTH_PORT: '0',
            LOG_LEVEL: 'info',
          }),
        },
      );
      started.push(worker);
      const ready = JSON.parse(await worker.waitFor(/"msg":"worker ready"/)) as {
        healthPort: number;
      };
      expect((await fetch(`http://127.0.0.1:${ready.healthPort}/healthz`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${ready.healthPort}/metrics`)).status).toBe(404);
      expect(worker.output().stdout).toMatch(/npm install prom-client/);
      expect(await worker.stop()).toEqual({ code: 0, signal: null });
    } finally {
      renameSync(hidden, promClient);
    }
  });
});
