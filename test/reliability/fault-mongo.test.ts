/**
 * The MongoDB-wire server stops under a steady refresh load and starts again on the same data:
 * /auth/token answers 503 temporarily_unavailable (never 500, never a hang past the app's
 * configured server-selection timeout), and service returns by itself within seconds, with every
 * session still usable.
 */
import { startRestartable, type RestartableServer } from '../support/servers';
import { waitFor } from '../support/wait-for';
import { refreshLoad, report, scale, signUp, tally } from './support/load';
import { startApp, type TestApp } from '../support/app-harness';

jest.setTimeout(scale(120_000, 900_000));

/** demo/runtime.ts: serverSelectionTimeoutMS 2000 — the longest a request may wait for a server. */
const CONFIGURED_TIMEOUT_MS = 2_000;
/** A request may meet the timeout once per store call it makes before failing; plus scheduling slack on a busy machine. */
const LATENCY_BOUND_MS = 2 * CONFIGURED_TIMEOUT_MS + 1_500;
/** Below the 10 s reuse grace, so a rotation committed just before the stop and retried after it is a retry, not a reuse. */
const OUTAGE_MS = scale(4_000, 8_000);
const LOAD_LOOPS = 6;

describe('the MongoDB-wire server stopped and restarted under load', () => {
  let mongo: RestartableServer;
  let stack: TestApp;

  beforeAll(async () => {
    mongo = await startRestartable('mongo');
    stack = await startApp({
      mongoUrl: mongo.url,
      env: { COOKIE_TRANSPORT: 'false' },
      logLevel: 'info',
    });
  });

  afterAll(async () => {
    await stack?.close();
    await mongo?.remove();
  });

  it('/auth/token answers 503 temporarily_unavailable during the outage, never 500 or a hang, and recovers by itself', async () => {
    const rounds = scale(1, 5);
    const figures = {
      rounds,
      outageMs: 0,
      requests: 0,
      ok: 0,
      unavailable: 0,
      otherErrors: 0,
      noAnswer: 0,
      maxLatencyMs: 0,
      recoveryMs: 0,
      /** Times the app's monitor watchdog saw the driver's stuck heartbeat and reopened the connection. */
      monitorReopens: 0,
      sessionsUsableAfter: 0,
    };
    const users = await Promise.all(Array.from({ length: LOAD_LOOPS }, () => signUp(stack.http)));
    let tokens = users.map((u) => u.refreshToken);
    for (let round = 0; round < rounds; round += 1) {
      const load = refreshLoad(stack.http, tokens);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      await mongo.stop();
      const stopped = Date.now();
      await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
      const sawUnavailable = load.samples.some((s) => s.status === 503);
      await mongo.restart();
      const restarted = Date.now();
      figures.outageMs = Math.max(figures.outageMs, restarted - stopped);
      const sampleAtRestart = load.samples.length;
      let recoveredAt: number | null = null;
      try {
        // The probe's value is what a failure prints: the answers since the restart, the last
        // error body and warning, and the server's state and last output.
        await waitFor(
          async () => {
            const since = load.samples.slice(sampleAtRestart);
            const ok = since.filter((s) => s.status === 200).length;
            if (ok > 0) recoveredAt ??= Date.now();
            return {
              ok,
              byStatus: tally(since.map((s) => s.status)),
              lastError: since.filter((s) => s.error).at(-1)?.error,
              lastWarning: stack.logs.lines.filter((l) => l.includes('"level":40')).at(-1),
              server: mongo.state(),
              serverOutput: mongo.output().slice(-1_500),
            };
          },
          {
            what: 'every loop to be answered 200 again',
            until: ({ ok }) => ok >= LOAD_LOOPS * 2,
            timeoutMs: 30_000,
          },
        );
      } finally {
        await load.stop();
      }
      figures.recoveryMs = Math.max(figures.recoveryMs, (recoveredAt ?? Date.now()) - restarted);
      tokens = [...load.tokens];

      const unavailable = load.samples.filter((s) => s.status === 503);
      const bodiesOk = unavailable.every((s) =>
        s.error?.includes('"error":"temporarily_unavailable"'),
      );
      figures.requests += load.samples.length;
      figures.ok += load.samples.filter((s) => s.status === 200).length;
      figures.unavailable += unavailable.length;
      figures.noAnswer += load.samples.filter((s) => s.status === 0).length;
      figures.otherErrors += load.samples.filter(
        (s) => s.status !== 200 && s.status !== 503 && s.status !== 0,
      ).length;
      figures.maxLatencyMs = Math.max(figures.maxLatencyMs, ...load.samples.map((s) => s.ms));
      expect(sawUnavailable).toBe(true);
      expect(bodiesOk).toBe(true);
      expect(tally(load.samples.map((s) => s.status))).toEqual(
        expect.not.objectContaining({ 500: expect.anything() }),
      );
    }
    const finals = await Promise.all(tokens.map((token) => stack.http.refresh(token)));
    figures.sessionsUsableAfter = finals.filter((a) => a.status === 200).length;
    figures.monitorReopens = stack.logs.lines.filter((l) =>
      l.includes('mongodb connection reopened'),
    ).length;
    report('fault.mongo', figures);

    expect(figures.otherErrors).toBe(0);
    expect(figures.noAnswer).toBe(0);
    expect(figures.maxLatencyMs).toBeLessThan(LATENCY_BOUND_MS);
    expect(figures.sessionsUsableAfter).toBe(LOAD_LOOPS);
  });
});
