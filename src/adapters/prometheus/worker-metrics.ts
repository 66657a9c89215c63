/**
 * `createWorkerMetrics`: the worker's queues and jobs as Prometheus metrics, fed by
 * `startTokenWorkers`' `onJobFinished` hook and its health report.
 */
import { Gauge, Histogram, Registry } from 'prom-client';
import type { HealthReport } from '../bullmq-worker/health-report';
import type { JobFinishedEvent } from '../bullmq-worker/queue-table';

/** Options of {@link createWorkerMetrics}. All optional. */
export interface WorkerMetricsOptions {
  /** Where the metrics are registered. Default: a new `Registry`. */
  registry?: Registry | undefined;
  /** Prefix of the job duration metric. Default `refresh_rotation_`. */
  prefix?: string | undefined;
  /** Buckets of the job duration histogram, in seconds. Default 5 ms to 2 min. */
  durationBuckets?: number[] | undefined;
}

/** What {@link WorkerMetrics.observe} reads at each scrape: `TokenWorkers` fits. */
export interface QueueCountsSource {
  health(): Promise<Pick<HealthReport, 'queues'>>;
}

/** The worker's metrics, and the hook that feeds them. */
export interface WorkerMetrics {
  readonly registry: Registry;
  /** Give this to `startTokenWorkers` as `onJobFinished`. */
  onJobFinished(event: JobFinishedEvent): void;
  /** Report the queues' job counts of these workers at each scrape. */
  observe(workers: QueueCountsSource): void;
  /** The registry in Prometheus text format, and its content type. */
  scrape(): Promise<{ contentType: string; body: string }>;
}

const DEFAULT_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120];

/**
 * Metrics:
 *
 * - `bullmq_job_count{queue,state}`: jobs per queue in `waiting`, `active`, `delayed`,
 *   `prioritized`, `failed`, `completed`, read at each scrape (the name and labels of BullMQ's own
 *   `Queue.exportPrometheusMetrics()`, whose text cannot be merged into a registry). A queue whose
 *   counts Redis did not give within a second is left out of that scrape.
 * - `refresh_rotation_worker_job_duration_seconds{queue,outcome}`: time from a worker taking a
 *   job to its end, `completed` or `failed`; its `_count` counts the jobs this process ran.
 */
export function createWorkerMetrics(options: WorkerMetricsOptions = {}): WorkerMetrics {
  const registry = options.registry ?? new Registry();
  const prefix = options.prefix ?? 'refresh_rotation_';
  const registers = [registry];
  const sources: QueueCountsSource[] = [];
  const duration = new Histogram({
    name: `${prefix}worker_job_duration_seconds`,
    help: 'Time from a worker taking a job to its end, by queue and outcome',
    labelNames: ['queue', 'outcome'],
    buckets: options.durationBuckets ?? DEFAULT_DURATION_BUCKETS,
    registers,
  });
  new Gauge({
    name: 'bullmq_job_count',
    help: 'Number of jobs in the queue by state',
    labelNames: ['queue', 'state'],
    registers,
    async collect() {
      this.reset();
      const reports = await Promise.all(sources.map((source) => source.health()));
      for (const report of reports) {
        for (const [queue, counts] of Object.entries(report.queues)) {
          for (const [state, count] of Object.entries(counts ?? {})) {
            this.labels(queue, state).inc(count ?? 0);
          }
        }
      }
    },
  });

  return {
    registry,
    onJobFinished(event) {
      if (event.durationMs === null) return;
      duration.labels(event.queue, event.outcome).observe(event.durationMs / 1_000);
    },
    observe: (workers) => void sources.push(workers),
    scrape: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
  };
}
