/**
 * `createRefreshMetrics`: the service's audit events as Prometheus counters and a latency
 * histogram, on a prom-client registry. Built on `onAuditEvent`, so the core library never loads
 * prom-client; only this entry point (`refresh-rotation/metrics`) does.
 */
import { Counter, Histogram, Registry } from 'prom-client';
import type { AuditEvent, RefreshOutcome } from '../../options';

/** Options of {@link createRefreshMetrics}. All optional. */
export interface RefreshMetricsOptions {
  /** Where the metrics are registered. Default: a new `Registry` (not prom-client's global one). */
  registry?: Registry | undefined;
  /** Prefix of every metric name. Default `refresh_rotation_`. */
  prefix?: string | undefined;
  /** Buckets of the refresh latency histogram, in seconds. Default 1 ms to 2.5 s. */
  latencyBuckets?: number[] | undefined;
}

/** What {@link RefreshMetrics.observe} reads at each scrape: `RotationService` fits. */
export interface DroppedTouchesSource {
  readonly droppedTouches: number;
}

/** The metrics of one service, and the hook that feeds them. */
export interface RefreshMetrics {
  readonly registry: Registry;
  /** Give this to the service as `onAuditEvent` (or call it from yours). */
  onAuditEvent(event: AuditEvent): void;
  /** Report `droppedTouches` of this source (the service) at each scrape. */
  observe(source: DroppedTouchesSource): void;
  /** The registry in Prometheus text format, and its content type: serve them at `/metrics`. */
  scrape(): Promise<{ contentType: string; body: string }>;
}

/** Every outcome, so each series exists (at 0) from the first scrape. */
const OUTCOMES: readonly RefreshOutcome[] = [
  'rotated',
  'grace',
  'reused',
  'forged',
  'invalid_dpop_proof',
  'expired',
  'revoked',
  'outdated',
  'malformed',
  'unknown_session',
  'invalid_request',
  'error',
];

const DEFAULT_LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * Metrics (with the default prefix):
 *
 * - `refresh_rotation_refreshes_total{outcome}`: refreshes by {@link RefreshOutcome}.
 * - `refresh_rotation_refresh_duration_seconds{outcome}`: refresh latency histogram.
 * - `refresh_rotation_sessions_issued_total`: logins (sessions created).
 * - `refresh_rotation_sessions_revoked_total{reason}`: single sessions revoked (logout, reuse…).
 * - `refresh_rotation_revoke_alls_total{mode}`: revoke-alls, `queued` (a job) or `inline` (Redis
 *   was unreachable, so the request revoked the records itself).
 * - `refresh_rotation_global_rotations_total`: breach rotations.
 * - `refresh_rotation_secret_compromise_suspected_total`: tokens with a valid tag that their
 *   session never had (`secret.compromise_suspected`): a refresh secret is out. Alert on any
 *   increase (docs/operations.md). No label: the key id is in the audit event.
 * - `refresh_rotation_touches_dropped_total`: activity updates the job queue refused (needs `observe`).
 *
 * Throws prom-client's error when a metric of that name is already in `registry`.
 */
export function createRefreshMetrics(options: RefreshMetricsOptions = {}): RefreshMetrics {
  const registry = options.registry ?? new Registry();
  const prefix = options.prefix ?? 'refresh_rotation_';
  const registers = [registry];
  const refreshes = new Counter({
    name: `${prefix}refreshes_total`,
    help: 'Refresh requests by outcome',
    labelNames: ['outcome'],
    registers,
  });
  const latency = new Histogram({
    name: `${prefix}refresh_duration_seconds`,
    help: 'Time to answer a refresh, by outcome',
    labelNames: ['outcome'],
    buckets: options.latencyBuckets ?? DEFAULT_LATENCY_BUCKETS,
    registers,
  });
  const issued = new Counter({
    name: `${prefix}sessions_issued_total`,
    help: 'Sessions created (logins)',
    registers,
  });
  const revoked = new Counter({
    name: `${prefix}sessions_revoked_total`,
    help: 'Single sessions revoked, by reason',
    labelNames: ['reason'],
    registers,
  });
  const revokeAlls = new Counter({
    name: `${prefix}revoke_alls_total`,
    help: 'Revoke-alls by mode: queued for the worker, or inline when the queue was unreachable',
    labelNames: ['mode'],
    registers,
  });
  const globalRotations = new Counter({
    name: `${prefix}global_rotations_total`,
    help: 'Breach rotations (global minimum version bumps)',
    registers,
  });
  const compromiseSuspected = new Counter({
    name: `${prefix}secret_compromise_suspected_total`,
    help: 'Tokens with a valid tag that their session never had: a refresh secret is out',
    registers,
  });
  const sources: DroppedTouchesSource[] = [];
  new Counter({
    name: `${prefix}touches_dropped_total`,
    help: 'Session activity updates dropped because the job queue refused them',
    registers,
    collect() {
      this.reset();
      this.inc(sources.reduce((sum, source) => sum + source.droppedTouches, 0));
    },
  });
  for (const outcome of OUTCOMES) refreshes.labels(outcome).inc(0);
  for (const mode of ['queued', 'inline']) revokeAlls.labels(mode).inc(0);

  function onAuditEvent(event: AuditEvent): void {
    switch (event.type) {
      case 'refresh.completed':
        refreshes.labels(event.outcome).inc();
        latency.labels(event.outcome).observe(event.durationMs / 1_000);
        return;
      case 'token.issued':
        issued.inc();
        return;
      case 'session.revoked':
        revoked.labels(event.reason).inc();
        return;
      case 'user.revoked_all':
        revokeAlls.labels(event.inline ? 'inline' : 'queued').inc();
        return;
      case 'global.rotated':
        globalRotations.inc();
        return;
      case 'secret.compromise_suspected':
        compromiseSuspected.inc();
        return;
      default:
        return;
    }
  }

  return {
    registry,
    onAuditEvent,
    observe: (source) => void sources.push(source),
    scrape: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
  };
}
