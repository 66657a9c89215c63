/**
 * Redis goes away under a steady refresh load and comes back (same port, same AOF data): refresh
 * keeps answering 200 (it never needs Redis), revoke-all still takes effect at once (inline, since
 * it cannot be enqueued), the touch jobs queued before the outage are run by the worker once Redis
 * is back, and revoke-all goes through the queue again.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { QUEUE_NAMES } from '../../src/adapters/bullmq';
import { startRestartable, type RestartableServer } from '../support/servers';
import { mongoUri } from '../support/services';
import { waitFor } from '../support/wait-for';
import { logIn, refreshLoad, report, scale, type SignedUp, signUp, tally } from './support/load';
import { startApp, type TestApp } from '../support/app-harness';

jest.setTimeout(scale(120_000, 600_000));

const OUTAGE_MS = scale(3_000, 60_000);
const TOUCH_WINDOW_MS = 4_000;

function sessionIdOf(refreshToken: string): string {
  return Buffer.from(refreshToken.slice(3), 'base64url').subarray(2, 18).toString('hex');
}

async function jobCounts(url: string, prefix: string, name: string) {
  const connection = new Redis(url, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection, prefix });
  try {
    return await queue.getJobCounts('waiting', 'delayed', 'active', 'completed', 'failed');
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

describe('Redis stopped and restarted under load', () => {
  let redis: RestartableServer;
  let stack: TestApp;

  beforeAll(async () => {
    redis = await startRestartable('redis');
    stack = await startApp({
      mongoUrl: mongoUri(),
      redisUrl: redis.url,
      env: { COOKIE_TRANSPORT: 'false', TOUCH_WINDOW: `${TOUCH_WINDOW_MS}ms` },
    });
  });

  afterAll(async () => {
    await stack?.close();
    await redis?.remove();
  });

  it('refresh keeps answering 200, revoke-all takes effect at once, and queued work resumes with nothing lost', async () => {
    const { http } = stack;
    const loaders = await Promise.all(Array.from({ length: 6 }, () => signUp(http)));
    const touched = await Promise.all(Array.from({ length: scale(20, 100) }, () => signUp(http)));
    const revokedDuringOutage = await Promise.all(
      Array.from({ length: scale(5, 20) }, () => signUp(http)),
    );
    const extraSessions = await Promise.all(revokedDuringOutage.map((u) => logIn(http, u.email)));

    const load = refreshLoad(
      http,
      loaders.map((u) => u.refreshToken),
    );
    await new Promise((resolve) => setTimeout(resolve, 1_000));

    // Queued work: one delayed touch job per session (they run TOUCH_WINDOW after the request).
    for (const user of touched)
      expect((await http.bearer('GET', '/me', user.accessToken)).status).toBe(200);
    const before = await waitFor(() => jobCounts(redis.url, stack.prefix, QUEUE_NAMES.touch), {
      what: 'the touch jobs to be queued',
      until: (counts) => (counts.delayed ?? 0) + (counts.waiting ?? 0) >= touched.length,
    });
    const queuedBeforeOutage = (before.delayed ?? 0) + (before.waiting ?? 0);

    await redis.stop();
    const outageStarted = Date.now();
    const loadAtStop = load.samples.length;

    // Revoke-all while Redis is down: answered, inline, and effective at once.
    const revokeAnswers: number[] = [];
    let revokeAllMaxMs = 0;
    for (const user of revokedDuringOutage) {
      const answer = await http.bearer('POST', '/auth/logout-all', user.accessToken);
      revokeAnswers.push(answer.status);
      revokeAllMaxMs = Math.max(revokeAllMaxMs, answer.ms);
    }
    const inlineEvents = stack.audit.filter(
      (e) =>
        e.type === 'user.revoked_all' &&
        e.inline &&
        revokedDuringOutage.some((u) => u.id === e.userId),
    ).length;
    const stillAccepted: string[] = [];
    for (const [index, user] of revokedDuringOutage.entries()) {
      for (const token of [user.refreshToken, extraSessions[index]!.refreshToken]) {
        if ((await http.refresh(token)).status !== 400) stillAccepted.push(token.slice(0, 12));
        const record = await stack.repository.findBySessionId(sessionIdOf(token));
        if (record?.revokedAt === null) stillAccepted.push(`record ${record.sessionId}`);
      }
    }
    const meDuringOutage = (await http.bearer('GET', '/me', loaders[0]!.accessToken)).status;

    const remaining = OUTAGE_MS - (Date.now() - outageStarted);
    if (remaining > 0) await new Promise((resolve) => setTimeout(resolve, remaining));
    const loadInOutage = load.samples.slice(loadAtStop);
    await redis.restart();
    const outageMs = Date.now() - outageStarted;

    // Queued work resumes: the worker reconnects and runs every delayed touch job.
    await waitFor(
      async () => {
        const records = await Promise.all(
          touched.map((u) => stack.repository.findBySessionId(sessionIdOf(u.refreshToken))),
        );
        return records.filter((r) => r?.lastUsedAt !== null).length;
      },
      {
        what: 'every touch queued before the outage to reach MongoDB',
        until: (count) => count === touched.length,
        timeoutMs: scale(30_000, 180_000),
      },
    );
    const touchRecoveryMs = Date.now() - outageStarted - outageMs;
    const after = await waitFor(() => jobCounts(redis.url, stack.prefix, QUEUE_NAMES.touch), {
      what: 'every touch job to be marked completed',
      until: (counts) => (counts.completed ?? 0) + (counts.failed ?? 0) >= touched.length,
      timeoutMs: 15_000,
    });

    // Revoke-all goes through the queue again once the app's Redis client is back.
    let queuedAgain: SignedUp | undefined;
    await waitFor(
      async () => {
        const user = await signUp(http);
        expect((await http.bearer('POST', '/auth/logout-all', user.accessToken)).status).toBe(204);
        const event = stack.audit.find(
          (e) => e.type === 'user.revoked_all' && e.userId === user.id,
        );
        if (event?.type === 'user.revoked_all' && !event.inline) queuedAgain = user;
        return queuedAgain !== undefined;
      },
      { what: 'a revoke-all to be enqueued again', until: (done) => done, timeoutMs: 20_000 },
    );
    await waitFor(() => stack.repository.findBySessionId(sessionIdOf(queuedAgain!.refreshToken)), {
      what: 'the worker to revoke the queued user',
      until: (record) => record?.revokedReason === 'user_requested',
    });

    await new Promise((resolve) => setTimeout(resolve, 500));
    await load.stop();
    const finals = await Promise.all(load.tokens.map((token) => http.refresh(token)));
    const statuses = tally(load.samples.map((s) => s.status));
    const inOutage = tally(loadInOutage.map((s) => s.status));
    const figures = {
      outageMs,
      refreshRequests: load.samples.length,
      refresh200: statuses[200] ?? 0,
      refresh503: statuses[503] ?? 0,
      refreshOther: load.samples.filter((s) => s.status !== 200).length - (statuses[503] ?? 0),
      refreshDuringOutage: loadInOutage.length,
      refresh200DuringOutage: inOutage[200] ?? 0,
      revokeAllDuringOutage: revokeAnswers.length,
      revokeAllInline: inlineEvents,
      revokeAllMaxMs,
      tokensStillAcceptedAfterRevokeAll: stillAccepted.length,
      touchJobsQueuedBeforeOutage: queuedBeforeOutage,
      touchJobsCompletedBeforeOutage: before.completed ?? 0,
      touchJobsCompletedAfter: after.completed ?? 0,
      touchJobsFailed: after.failed ?? 0,
      touchRecoveryMs,
      lostJobs: touched.length - (after.completed ?? 0),
      meDuringOutage,
    };
    report('fault.redis', figures);

    expect(figures.refreshOther).toBe(0);
    expect(figures.refresh503).toBe(0);
    expect(figures.refreshDuringOutage).toBeGreaterThan(0);
    expect(revokeAnswers.every((s) => s === 204)).toBe(true);
    expect(inlineEvents).toBe(revokedDuringOutage.length);
    expect(stillAccepted).toEqual([]);
    expect(meDuringOutage).toBe(200);
    expect(figures.touchJobsCompletedBeforeOutage).toBe(0);
    expect(figures.lostJobs).toBe(0);
    expect(figures.touchJobsFailed).toBe(0);
    expect(finals.map((a) => a.status)).toEqual(finals.map(() => 200));
  });
});
