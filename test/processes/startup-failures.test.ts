/**
 * Start-up failures of the example app and the worker, run as operators run them: each one exits
 * non-zero saying which service or variable is at fault and what to do (issue 16).
 */
import { createServer, type Server } from 'node:net';
import { Redis } from 'ioredis';
import { freePort, startRedis } from '../support/servers';
import { mongoUri, redisUrl, uniqueName } from '../support/services';
import { startGroup, type ProcessGroup } from '../support/process-group';

const SECRETS = {
  ACCESS_TOKEN_SECRET: 'p0Vb3yQ9rXh2LmT8wKc5NsJ1dGf7ZaE4uRiO6tYq',
  REFRESH_TOKEN_SECRETS: 'Hk3Jw9Qm2Xv7Lp5Rt8Ns1Bc4Dz6Fy0Ga3Ue5Io7P',
};

const running: ProcessGroup[] = [];
afterEach(() => {
  for (const group of running.splice(0)) group.killGroup();
});

function app(env: Record<string, string>): ProcessGroup {
  const group = startGroup(process.execPath, ['--import', 'tsx', 'demo/server.ts'], {
    LOG_LEVEL: 'info',
    ...env,
  });
  running.push(group);
  return group;
}

function worker(env: Record<string, string>): ProcessGroup {
  const group = startGroup(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
    LOG_LEVEL: 'info',
    ...env,
  });
  running.push(group);
  return group;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  return freePort();
}

function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('the example app at start', () => {
  it('exits 1 saying PORT is taken, never "listening"', async () => {
    const port = await freePort();
    const taker: Server = createServer();
    await new Promise<void>((resolve) => taker.listen(port, resolve));
    try {
      const group = app({ PORT: String(port) });
      const exit = await group.exitWithin(30_000);
      expect(exit.code).toBe(1);
      expect(group.stderr()).toMatch(
        new RegExp(`PORT ${port} is already in use by another process: .*set PORT to a free port`),
      );
      expect(group.stdout()).not.toMatch(/listening/);
    } finally {
      await new Promise((resolve) => taker.close(resolve));
    }
  }, 40_000);

  it('names MongoDB, MONGODB_URI and what to do when MongoDB is down', async () => {
    const port = await closedPort();
    const group = app({ MONGODB_URI: `mongodb://127.0.0.1:${port}/rr`, ...SECRETS });
    const exit = await group.exitWithin(30_000);
    expect(exit.code).toBe(1);
    expect(group.stderr()).toMatch(
      new RegExp(
        `MongoDB is unreachable at MONGODB_URI=mongodb://127\\.0\\.0\\.1:${port}/rr \\(connect ECONNREFUSED[^)]*\\): start MongoDB or correct MONGODB_URI`,
      ),
    );
  }, 40_000);

  it('names Redis, REDIS_URL and what to do when Redis is down', async () => {
    const port = await closedPort();
    const group = app({
      MONGODB_URI: `${mongoUri()}/${uniqueName('rr_start')}`,
      REDIS_URL: `redis://127.0.0.1:${port}`,
      ...SECRETS,
    });
    const exit = await group.exitWithin(30_000);
    expect(exit.code).toBe(1);
    expect(group.stderr()).toMatch(
      new RegExp(
        `Redis is unreachable at REDIS_URL=redis://127\\.0\\.0\\.1:${port} \\([^)]*ECONNREFUSED[^)]*\\): start Redis or correct REDIS_URL`,
      ),
    );
  }, 40_000);

  it("refuses docker-compose.yml's placeholder secrets with NODE_ENV=production", async () => {
    const group = app({
      NODE_ENV: 'production',
      MONGODB_URI: `${mongoUri()}/${uniqueName('rr_start')}`,
      ACCESS_TOKEN_SECRET: 'compose-local-only-access-secret-0123456789abcdef',
      REFRESH_TOKEN_SECRETS: 'compose-local-only-refresh-secret-0123456789abcdef',
    });
    const exit = await group.exitWithin(30_000);
    expect(exit.code).toBe(1);
    expect(group.stderr()).toMatch(/ACCESS_TOKEN_SECRET is a placeholder or development secret/);
    expect(group.stderr()).toMatch(/REFRESH_TOKEN_SECRETS\[0\] is a placeholder/);
  }, 40_000);
});

describe('the worker at start', () => {
  it('refuses CLEANUP_CRON=99 99 99 99 99 naming the variable, exit 78', async () => {
    const group = worker({
      MONGODB_URI: `${mongoUri()}/${uniqueName('rr_start')}`,
      REDIS_URL: redisUrl(),
      CLEANUP_CRON: '99 99 99 99 99',
    });
    const exit = await group.exitWithin(30_000);
    expect(exit.code).toBe(78);
    expect(group.stderr()).toMatch(/CLEANUP_CRON must be a cron pattern .*"99 99 99 99 99"/);
  }, 40_000);

  it('with Redis down: answers /healthz 503 naming Redis, logs quietly, exits 1 after WORKER_STARTUP_TIMEOUT', async () => {
    const redisPort = await closedPort();
    const healthPort = await freePort();
    const group = worker({
      MONGODB_URI: `${mongoUri()}/${uniqueName('rr_start')}`,
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      WORKER_HEALTH_PORT: String(healthPort),
      WORKER_STARTUP_TIMEOUT: '6s',
    });
    await group.waitFor(/waiting: Redis is unreachable/);
    const response = await fetch(`http://127.0.0.1:${healthPort}/healthz`);
    expect(response.status).toBe(503);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'starting', mongodb: 'ok' });
    expect(body.redis).toMatch(/^unreachable \(REDIS_URL\): .*ECONNREFUSED/);

    const exit = await group.exitWithin(30_000);
    expect(exit.code).toBe(1);
    const lines = jsonLines(group.stdout());
    const fatal = lines.find((line) => line.level === 60);
    expect(fatal?.msg).toMatch(
      new RegExp(
        `Redis is unreachable at REDIS_URL=redis://127\\.0\\.0\\.1:${redisPort} .*start Redis or correct REDIS_URL\\. Gave up after \\d+ s \\(WORKER_STARTUP_TIMEOUT=6000 ms\\)`,
      ),
    );
    // About five attempts in 6 s; one line while the reason stays the same, then the verdict.
    expect(lines.length).toBeLessThanOrEqual(3);
    expect(group.stderr()).toBe('');
  }, 40_000);

  it("routes BullMQ's console warnings through the JSON logger", async () => {
    const redis = await startRedis();
    try {
      const client = new Redis(redis.url);
      await client.config('SET', 'maxmemory-policy', 'allkeys-lru');
      client.disconnect();
      const group = worker({
        MONGODB_URI: `${mongoUri()}/${uniqueName('rr_start')}`,
        REDIS_URL: redis.url,
        QUEUE_PREFIX: '{rr_console}',
      });
      await group.waitFor(/"msg":"worker ready"/, 60_000);
      group.signal('SIGTERM');
      expect((await group.exitWithin(30_000)).code).toBe(0);
      const lines = jsonLines(group.stdout()); // throws on a line that is not JSON
      expect(lines).toContainEqual(
        expect.objectContaining({
          level: 40,
          source: 'console',
          msg: expect.stringMatching(/Eviction policy is allkeys-lru/),
        }),
      );
      expect(group.stderr()).toBe('');
    } finally {
      await redis.stop();
    }
  }, 90_000);
});
