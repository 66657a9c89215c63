/**
 * The example app's `close()` (what SIGTERM runs in `npm start` and the image) is bounded: with
 * Redis stalled, not gone (a frozen proxy holds every byte, so nothing errors), each step gives up
 * after its share and the process can still exit before an orchestrator's kill deadline; what it
 * gave up on ends once Redis answers again.
 */
import { loadEnv } from '../../demo/env';
import { createRuntime } from '../../demo/runtime';
import { appEnvironment, silentLogger } from '../support/app-harness';
import { startFreezableProxy } from '../support/freezable-proxy';
import { mongoUri, openTestDatabase, redisUrl, uniqueName } from '../support/services';
import { waitFor } from '../support/wait-for';
import { databaseUri } from '../support/worker-process';

/** `close()` steps that talk to Redis: the BullMQ producer, the queues (in parallel), the bus. */
const REDIS_STEPS = 3;
const STEP_MS = 2_000;

describe('the example app with MongoDB and BullMQ', () => {
  it('closes within its bound while Redis is stalled', async () => {
    const database = await openTestDatabase();
    const proxy = await startFreezableProxy(Number(new URL(redisUrl()).port));
    try {
      const env = loadEnv(
        appEnvironment({
          MONGODB_URI: databaseUri(mongoUri(), database.dbName),
          REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
          QUEUE_PREFIX: `{${uniqueName('rr_close')}}`,
        }),
      );
      const runtime = await createRuntime(env, silentLogger, { bcryptRounds: 4 });
      expect(runtime.mode).toBe('mongodb+bullmq');
      proxy.freeze();
      const started = Date.now();
      await runtime.close();
      const took = Date.now() - started;
      expect(took).toBeGreaterThanOrEqual(STEP_MS); // it did wait for the stalled Redis
      expect(took).toBeLessThan(REDIS_STEPS * STEP_MS + 2_000);
      // What close() gave up on finishes once Redis answers again: no connection is left behind.
      proxy.thaw();
      await waitFor(() => proxy.connections() === 0, {
        what: "the app's Redis connections to end after Redis recovers",
        timeoutMs: 5_000,
      });
    } finally {
      proxy.thaw();
      await proxy.close();
      await database.close();
    }
  }, 30_000);
});
