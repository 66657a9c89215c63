/**
 * The worker bin's HTTP health server on WORKER_HEALTH_PORT. `GET /healthz` for operators and
 * orchestrators: 200 with the worker's state and BullMQ's job counts when healthy, 503 with the
 * same body when starting, degraded or stopping. `GET /metrics`, when a metrics source is given:
 * Prometheus text format (docs/worker.md lists the names). Anything else is 404. The report itself
 * is the library's (`TokenWorkers.health()`, src/adapters/bullmq-worker/health-report.ts).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { reasonOf, StartupError } from '../startup/failures';

/** A report with a status; the body is the report as JSON. */
export interface HealthSource {
  (): Promise<{ status: string }>;
}

/** The metrics in Prometheus text format: `createWorkerMetrics(...).scrape` fits. */
export interface MetricsSource {
  (): Promise<{ contentType: string; body: string }>;
}

/** A listening health server. */
export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Listen on `port` (0: a free one) on all interfaces. */
export async function startHealthServer(
  port: number,
  report: HealthSource,
  metrics?: MetricsSource,
): Promise<HealthServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method === 'GET' && path === '/metrics' && metrics) {
      metrics().then(
        ({ contentType, body }) =>
          response
            .writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' })
            .end(body),
        (error: unknown) =>
          response
            .writeHead(500, { 'content-type': 'text/plain' })
            .end(`metrics failed: ${String(error)}`),
      );
      return;
    }
    if (request.method !== 'GET' || path !== '/healthz') {
      response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
      return;
    }
    report().then(
      (body) => {
        response
          .writeHead(body.status === 'ok' ? 200 : 503, {
            'content-type': 'application/json',
            'cache-control': 'no-store',
          })
          .end(JSON.stringify(body));
      },
      (error: unknown) => {
        response
          .writeHead(503, { 'content-type': 'application/json' })
          .end(JSON.stringify({ status: 'degraded', error: String(error) }));
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => {
      server.off('error', reject);
      resolve();
    });
  });
  let closing: Promise<void> | undefined;
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}

/**
 * The health server on WORKER_HEALTH_PORT, or null when the variable is unset. A port that cannot
 * be listened on is a {@link StartupError} that says which port and what to do.
 */
export async function openHealthPort(
  port: number | undefined,
  report: HealthSource,
  metrics?: MetricsSource,
): Promise<HealthServer | null> {
  if (port === undefined) return null;
  try {
    return await startHealthServer(port, report, metrics);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new StartupError(
      code === 'EADDRINUSE'
        ? `WORKER_HEALTH_PORT ${port} is already in use by another process: stop that process or set WORKER_HEALTH_PORT to a free port.`
        : `cannot listen on WORKER_HEALTH_PORT ${port}: ${reasonOf(error)}.`,
      code === 'EADDRINUSE' ? 'port_in_use' : 'listen_failed',
    );
  }
}
