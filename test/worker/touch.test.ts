/**
 * A burst of touches: 10,000 calls for 100 sessions become a few hundred jobs at most and far
 * fewer database writes, and every session ends at its latest touch. Producer in this process,
 * worker as a separate process; counts read from the worker's /healthz.
 */
import { BullMQTokenJobs, QUEUE_NAMES, type BullMQTokenJobsStats } from '../../src/adapters/bullmq';
import type { TouchJob } from '../../src/domain/token-jobs';
import type { HealthReport } from '../../src/adapters/bullmq-worker';
import { aNewRecord } from '../support/builders';
import { redisUrl } from '../support/services';
import { waitFor } from '../support/wait-for';
import { openWorkerTestBed, type WorkerTestBed } from '../support/worker-test-bed';

jest.setTimeout(180_000);

const SESSIONS = 100;
const CALLS = 10_000;
const WINDOW_MS = 2_000;
const DEDUP_ONLY_WINDOW_MS = 8_000;

describe('touch burst through the worker process', () => {
  let bed: WorkerTestBed;
  let repository: WorkerTestBed['repository'];
  let prefix: string;
  let db: WorkerTestBed['db'];
  let healthPort: number;

  beforeEach(async () => {
    bed = await openWorkerTestBed(QUEUE_NAMES.touch, 'rr_touch');
    ({ db, repository, prefix } = bed);
    healthPort = (await bed.startWorker({ WORKER_HEALTH_PORT: '0' }).ready()).healthPort ?? 0;
  });

  afterEach(async () => {
    await bed.close();
  });

  async function health(): Promise<HealthReport> {
    const response = await fetch(`http://127.0.0.1:${healthPort}/healthz`, {
      signal: AbortSignal.timeout(5_000),
    });
    return (await response.json()) as HealthReport;
  }

  /** Sessions in the database, and 10,000 touches over them (each session's times interleaved). */
  async function burstOver(
    sessionCount: number,
  ): Promise<{ touches: TouchJob[]; latest: Map<string, Date> }> {
    const records = await Promise.all(
      Array.from({ length: sessionCount }, () => repository.save(aNewRecord())),
    );
    const start = Date.now() - CALLS;
    const touches = Array.from({ length: CALLS }, (_, i) => ({
      sessionId: records[i % sessionCount]!.sessionId,
      at: new Date(start + i),
    }));
    const latest = new Map<string, Date>();
    for (const touch of touches) latest.set(touch.sessionId, touch.at);
    return { touches, latest };
  }

  /** Sends the touches in waves of `wave` concurrent calls (as concurrent requests would). */
  async function runBurst(
    jobs: BullMQTokenJobs,
    touches: readonly TouchJob[],
    latest: Map<string, Date>,
    wave = touches.length,
  ) {
    const started = performance.now();
    for (let i = 0; i < touches.length; i += wave) {
      await Promise.all(touches.slice(i, i + wave).map((touch) => jobs.touch(touch)));
    }
    const enqueueMs = Math.round(performance.now() - started);
    await waitFor(
      async () => {
        // The session id is the document's _id (schema.ts).
        const stored = await db.connection
          .collection<{ _id: string; lastUsedAt: Date | null }>('refresh_tokens')
          .find({}, { projection: { _id: 1, lastUsedAt: 1 } })
          .toArray();
        const behind = stored.filter(
          (doc) =>
            !latest.has(doc._id) || doc.lastUsedAt?.getTime() !== latest.get(doc._id)!.getTime(),
        );
        return stored.length === latest.size && behind.length === 0;
      },
      { what: 'every session to reach its latest touch', timeoutMs: 90_000, intervalMs: 500 },
    );
    // Read once every fold was sent (each session is at its latest touch), so that every call is
    // in exactly one counter.
    const producer: BullMQTokenJobsStats = jobs.stats();
    const settled = await waitFor(
      async () => {
        const report = await health();
        const counts = report.queues[QUEUE_NAMES.touch];
        return counts && counts.delayed === 0 && counts.waiting === 0 && counts.active === 0
          ? report
          : undefined;
      },
      { what: 'the touch queue to drain' },
    );
    return {
      enqueueMs,
      producer,
      jobsRun: settled.processed[QUEUE_NAMES.touch]!.completed,
      writes: settled.touch.writes,
      settled,
    };
  }

  it('10,000 touches for 100 sessions: a few hundred jobs at most, far fewer writes, every session at its latest touch', async () => {
    const { touches, latest } = await burstOver(SESSIONS);
    const jobs = new BullMQTokenJobs({ connection: redisUrl(), prefix, touchWindow: WINDOW_MS });
    try {
      const result = await runBurst(jobs, touches, latest);
      process.stdout.write(
        `touch burst (per-process fold + Redis dedup): ${CALLS} calls -> ${result.producer.touchesEnqueued} enqueues ` +
          `(${result.producer.touchesCoalesced} folded) in ${result.enqueueMs} ms -> ${result.jobsRun} jobs -> ${result.writes} touchMany writes\n`,
      );
      expect(result.producer.touchesDropped).toBe(0);
      expect(result.producer.touchesEnqueued + result.producer.touchesCoalesced).toBe(CALLS);
      expect(result.jobsRun).toBeLessThanOrEqual(3 * SESSIONS);
      expect(result.writes).toBeLessThan(CALLS / 20);
      expect(result.settled.processed[QUEUE_NAMES.touch]!.failed).toBe(0);
    } finally {
      await jobs.close();
    }
  });

  it('without the per-process fold, Redis deduplication alone costs at most one job per session and window', async () => {
    const { touches, latest } = await burstOver(SESSIONS);
    const jobs = new BullMQTokenJobs({
      connection: redisUrl(),
      prefix,
      touchWindow: DEDUP_ONLY_WINDOW_MS,
      coalesceInterval: 0,
      enqueueTimeout: '30s',
    });
    try {
      const result = await runBurst(jobs, touches, latest, 500);
      process.stdout.write(
        `touch burst (Redis dedup only, waves of 500): ${CALLS} calls -> ${result.producer.touchesEnqueued} enqueues in ${result.enqueueMs} ms ` +
          `-> ${result.jobsRun} jobs -> ${result.writes} touchMany writes\n`,
      );
      expect(result.producer.touchesEnqueued).toBe(CALLS);
      // Each session opens a new window at most once per window of the burst (plus the one it starts in).
      expect(result.jobsRun).toBeLessThanOrEqual(
        SESSIONS * (Math.ceil(result.enqueueMs / DEDUP_ONLY_WINDOW_MS) + 1),
      );
      expect(result.jobsRun).toBeLessThan(CALLS / 10);
      expect(result.writes).toBeLessThan(CALLS / 20);
    } finally {
      await jobs.close();
    }
  });
});
