/**
 * SIGTERM as an orchestrator sends it (to the main process only: `npm run …` here) after MongoDB and
 * Redis went away: every process of the group (npm, node) is gone within the shutdown bound, none
 * orphaned (issue 16). The services are this test's own, so it can stop them.
 */
import { freePort, startMongo, startRedis, type ServerHandle } from '../support/servers';
import { groupGoneWithin, startGroup, type ProcessGroup } from '../support/process-group';

const SECRETS = {
  ACCESS_TOKEN_SECRET: 'p0Vb3yQ9rXh2LmT8wKc5NsJ1dGf7ZaE4uRiO6tYq',
  REFRESH_TOKEN_SECRETS: 'Hk3Jw9Qm2Xv7Lp5Rt8Ns1Bc4Dz6Fy0Ga3Ue5Io7P',
};

let mongo: ServerHandle;
let redis: ServerHandle;
const running: ProcessGroup[] = [];

beforeEach(async () => {
  [mongo, redis] = await Promise.all([startMongo(), startRedis()]);
});

afterEach(async () => {
  for (const group of running.splice(0)) group.killGroup();
  await Promise.all([mongo.stop(), redis.stop()]);
});

function npmRun(script: string, env: Record<string, string>): ProcessGroup {
  const group = startGroup('npm', ['run', '--silent', script], { LOG_LEVEL: 'info', ...env });
  running.push(group);
  return group;
}

describe('SIGTERM with MongoDB and Redis gone', () => {
  it('npm run worker: the worker gets it and the whole group exits within WORKER_SHUTDOWN_TIMEOUT', async () => {
    const group = npmRun('worker', {
      MONGODB_URI: `${mongo.url}/rr_signals`,
      REDIS_URL: redis.url,
      QUEUE_PREFIX: '{rr_signals}',
      WORKER_SHUTDOWN_TIMEOUT: '3s',
      WORKER_HEALTH_PORT: String(await freePort()),
    });
    await group.waitFor(/"msg":"worker ready"/, 60_000);
    await Promise.all([redis.stop(), mongo.stop()]);

    group.signal('SIGTERM');
    const goneInMs = await groupGoneWithin(group, 6_000);
    expect(goneInMs).toBeLessThan(6_000);
    expect(group.stdout()).toMatch(/"signal":"SIGTERM","timeoutMs":3000,"msg":"shutting down"/);
    expect((await group.exited).code).toBe(0);
  }, 90_000);

  it('npm run start:dev (the app on MongoDB and BullMQ): the whole group exits within 10 s', async () => {
    const group = npmRun('start:dev', {
      MONGODB_URI: `${mongo.url}/rr_signals`,
      REDIS_URL: redis.url,
      QUEUE_PREFIX: '{rr_signals}',
      PORT: String(await freePort()),
      ...SECRETS,
    });
    await group.waitFor(/example app listening/, 60_000);
    await Promise.all([redis.stop(), mongo.stop()]);

    group.signal('SIGTERM');
    const goneInMs = await groupGoneWithin(group, 10_000);
    expect(goneInMs).toBeLessThan(10_000);
    expect(group.stdout()).toMatch(/"signal":"SIGTERM","msg":"shutting down"/);
    expect((await group.exited).code).toBe(0);
  }, 90_000);

  it('npm run demo in MongoDB mode: the whole group exits within 10 s', async () => {
    const group = npmRun('demo', {
      MONGODB_URI: `${mongo.url}/rr_signals`,
      PORT: String(await freePort()),
      ...SECRETS,
    });
    await group.waitFor(/example app listening/, 60_000);
    await mongo.stop();

    group.signal('SIGTERM');
    const goneInMs = await groupGoneWithin(group, 10_000);
    expect(goneInMs).toBeLessThan(10_000);
    expect((await group.exited).code).toBe(0);
  }, 90_000);
});
