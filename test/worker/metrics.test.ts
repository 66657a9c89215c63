/**
 * Issue 16, item 1: the worker's health port serves its queues and jobs in Prometheus text format
 * (`GET /metrics`): job counts per queue and state, as BullMQ reports them, and a job duration
 * histogram fed by `onJobFinished`. The worker is the real bin (`workers/main.ts`).
 */
import { BullMQTokenJobs, QUEUE_NAMES } from '../../src/adapters/bullmq';
import { openTestRedis, redisUrl } from '../support/services';
import { waitFor } from '../support/wait-for';
import { openWorkerTestBed, type WorkerTestBed } from '../support/worker-test-bed';

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("the worker's health port serves queue metrics", () => {
  let bed: WorkerTestBed;
  let jobs: BullMQTokenJobs;

  beforeAll(async () => {
    bed = await openWorkerTestBed(QUEUE_NAMES.revokeAll, 'rr_worker_metrics');
    jobs = new BullMQTokenJobs({
      connection: redisUrl(),
      prefix: bed.prefix,
      touchWindow: '1h',
      coalesceInterval: 0,
    });
  });

  afterAll(async () => {
    await jobs?.close();
    await bed?.close();
    const redis = openTestRedis();
    const keys = await redis.keys(`${bed.prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('counts waiting, delayed and completed jobs per queue and times each completed job', async () => {
    const { healthPort } = await bed.startWorker({ WORKER_HEALTH_PORT: '0' }).ready();
    const requestedAt = new Date();
    await jobs.revokeAll({ userId: 'metrics-user-1', reason: 'user_requested', requestedAt });
    await jobs.revokeAll({ userId: 'metrics-user-2', reason: 'user_requested', requestedAt });
    // A touch job waits two touch windows (2 h here): it stays delayed.
    await jobs.touch({ sessionId: 'a'.repeat(32), at: requestedAt });

    const scrape = async () => {
      const response = await fetch(`http://127.0.0.1:${healthPort}/metrics`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      return response.text();
    };
    const text = await waitFor(
      async () => {
        const body = await scrape();
        const timed = sample(
          body,
          'refresh_rotation_worker_job_duration_seconds_count{queue="revoke-all",outcome="completed"}',
        );
        return (
          sample(body, 'bullmq_job_count{queue="revoke-all",state="completed"}') === 2 &&
          timed === 2 &&
          body
        );
      },
      { what: 'both revoke-all jobs completed' },
    );

    expect(sample(text, 'bullmq_job_count{queue="revoke-all",state="waiting"}')).toBe(0);
    expect(sample(text, 'bullmq_job_count{queue="revoke-all",state="active"}')).toBe(0);
    expect(sample(text, 'bullmq_job_count{queue="revoke-all",state="failed"}')).toBe(0);
    expect(sample(text, 'bullmq_job_count{queue="touch",state="delayed"}')).toBe(1);
    expect(sample(text, 'bullmq_job_count{queue="cleanup",state="waiting"}')).toBeDefined();
    expect(
      sample(
        text,
        'refresh_rotation_worker_job_duration_seconds_count{queue="revoke-all",outcome="completed"}',
      ),
    ).toBe(2);
    expect(
      sample(
        text,
        'refresh_rotation_worker_job_duration_seconds_bucket{le="+Inf",queue="revoke-all",outcome="completed"}',
      ),
    ).toBe(2);
  });
});
