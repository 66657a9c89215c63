/**
 * `refresh-rotation/metrics` on its own: audit events and job events in, Prometheus text out.
 * The HTTP and worker tests scrape the same metrics after real journeys.
 */
import { Registry } from 'prom-client';
import { createRefreshMetrics, createWorkerMetrics } from '../../src/adapters/prometheus';

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const at = new Date('2026-01-01T00:00:00Z');

describe('createRefreshMetrics', () => {
  it('counts refreshes by outcome with their latency, and revoke-alls by mode', async () => {
    const metrics = createRefreshMetrics();
    metrics.onAuditEvent({ type: 'refresh.completed', at, outcome: 'rotated', durationMs: 3 });
    metrics.onAuditEvent({ type: 'refresh.completed', at, outcome: 'rotated', durationMs: 700 });
    metrics.onAuditEvent({ type: 'refresh.completed', at, outcome: 'outdated', durationMs: 1 });
    const revokeAll = {
      type: 'user.revoked_all',
      at,
      userId: 'u',
      reason: 'x',
      minTokenVersion: 2,
    };
    metrics.onAuditEvent({ ...revokeAll, type: 'user.revoked_all', inline: true });
    metrics.onAuditEvent({ ...revokeAll, type: 'user.revoked_all', inline: false });
    metrics.onAuditEvent({ ...revokeAll, type: 'user.revoked_all', inline: false });
    const { contentType, body } = await metrics.scrape();

    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sample(body, 'refresh_rotation_refreshes_total{outcome="rotated"}')).toBe(2);
    expect(sample(body, 'refresh_rotation_refreshes_total{outcome="outdated"}')).toBe(1);
    expect(sample(body, 'refresh_rotation_refreshes_total{outcome="reused"}')).toBe(0);
    expect(
      sample(
        body,
        'refresh_rotation_refresh_duration_seconds_bucket{le="0.005",outcome="rotated"}',
      ),
    ).toBe(1);
    expect(
      sample(body, 'refresh_rotation_refresh_duration_seconds_sum{outcome="rotated"}'),
    ).toBeCloseTo(0.703);
    expect(sample(body, 'refresh_rotation_revoke_alls_total{mode="queued"}')).toBe(2);
    expect(sample(body, 'refresh_rotation_revoke_alls_total{mode="inline"}')).toBe(1);
  });

  it('counts suspected secret compromises, from 0 at the first scrape, and nothing else moves it', async () => {
    const metrics = createRefreshMetrics();
    const series = 'refresh_rotation_secret_compromise_suspected_total';
    expect(sample((await metrics.scrape()).body, series)).toBe(0);
    const suspected = {
      type: 'secret.compromise_suspected',
      at,
      keyId: 7,
      userId: 'u',
      sessionId: 's',
      presentedGeneration: 3,
      currentGeneration: 3,
    } as const;
    metrics.onAuditEvent(suspected);
    metrics.onAuditEvent({ ...suspected, keyId: 9 });
    metrics.onAuditEvent({
      type: 'token.reuse_detected',
      at,
      userId: 'u',
      sessionId: 's',
      presentedGeneration: 1,
      currentGeneration: 3,
    });
    metrics.onAuditEvent({ type: 'token.rejected', at, reason: 'forged' });
    expect(sample((await metrics.scrape()).body, series)).toBe(2);
  });

  it('reads dropped touches from every observed service at each scrape', async () => {
    const metrics = createRefreshMetrics({ prefix: 'app_' });
    const first = { droppedTouches: 2 };
    metrics.observe(first);
    metrics.observe({ droppedTouches: 1 });
    expect(sample((await metrics.scrape()).body, 'app_touches_dropped_total')).toBe(3);
    first.droppedTouches = 5;
    expect(sample((await metrics.scrape()).body, 'app_touches_dropped_total')).toBe(6);
  });

  it('registers on the registry it is given, and refuses a second set of the same names there', () => {
    const registry = new Registry();
    const metrics = createRefreshMetrics({ registry });
    expect(metrics.registry).toBe(registry);
    expect(registry.getSingleMetric('refresh_rotation_refreshes_total')).toBeDefined();
    expect(() => createRefreshMetrics({ registry })).toThrow(/already been registered/);
  });
});

describe('createWorkerMetrics', () => {
  it('times finished jobs by queue and outcome and reports the queues of every observed worker', async () => {
    const metrics = createWorkerMetrics();
    metrics.onJobFinished({
      queue: 'touch',
      name: 'touch',
      jobId: '1',
      outcome: 'completed',
      durationMs: 20,
    });
    metrics.onJobFinished({
      queue: 'touch',
      name: 'touch',
      jobId: '2',
      outcome: 'failed',
      durationMs: 5,
    });
    metrics.onJobFinished({
      queue: 'touch',
      name: 'touch',
      jobId: '3',
      outcome: 'failed',
      durationMs: null,
    });
    metrics.observe({
      health: async () => ({ queues: { touch: { waiting: 4, delayed: 2 }, cleanup: null } }),
    });
    const { body } = await metrics.scrape();

    expect(
      sample(
        body,
        'refresh_rotation_worker_job_duration_seconds_count{queue="touch",outcome="completed"}',
      ),
    ).toBe(1);
    expect(
      sample(
        body,
        'refresh_rotation_worker_job_duration_seconds_count{queue="touch",outcome="failed"}',
      ),
    ).toBe(1);
    expect(sample(body, 'bullmq_job_count{queue="touch",state="waiting"}')).toBe(4);
    expect(sample(body, 'bullmq_job_count{queue="touch",state="delayed"}')).toBe(2);
    expect(body).not.toContain('queue="cleanup",state=');
  });
});
