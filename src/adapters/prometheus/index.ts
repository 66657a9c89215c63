/**
 * refresh-rotation/metrics: Prometheus metrics through prom-client (an optional peer dependency:
 * only this entry point loads it).
 *
 * ```ts
 * const metrics = createRefreshMetrics();
 * const service = new RotationService({ ...options, onAuditEvent: metrics.onAuditEvent });
 * metrics.observe(service);
 * app.get('/metrics', async (_req, res) => {
 *   const { contentType, body } = await metrics.scrape();
 *   res.type(contentType).send(body);
 * });
 * ```
 */
export { createRefreshMetrics } from './refresh-metrics';
export type {
  RefreshMetrics,
  RefreshMetricsOptions,
  DroppedTouchesSource,
} from './refresh-metrics';
export { createWorkerMetrics } from './worker-metrics';
export type { WorkerMetrics, WorkerMetricsOptions, QueueCountsSource } from './worker-metrics';
