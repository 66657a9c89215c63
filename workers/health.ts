/**
 * `GET /healthz` for operators and orchestrators: 200 with the worker's state and BullMQ's job
 * counts when healthy, 503 with the same body when degraded or stopping. `GET /metrics`, when a
 * metrics source is given: Prometheus text format (docs/worker.md lists the names). Anything else
 * is 404.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

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
