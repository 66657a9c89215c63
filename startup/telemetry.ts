/**
 * OpenTelemetry for the worker bin and the demo app, started only when the standard
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, from the process
 * environment (not `.env`: it must run before anything else is loaded). Each entry imports its
 * `telemetry.ts` first, so the http, express, mongodb and ioredis instrumentations patch those
 * modules before they are required. The SDK reads the other `OTEL_*` variables itself (protocol,
 * headers, sampler, service name).
 *
 * What the instrumentations would record by default and must not (docs/operations.md, "Traces"):
 * ioredis serialises every argument of EVAL/EVALSHA, which is how BullMQ sends job data, so only
 * the command name is kept; an incoming request's path keeps its route, with session ids and
 * token-like segments replaced, and its query keeps names only. Headers are not captured.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
// Types only: erased from the build, so nothing of OpenTelemetry loads without an endpoint.
import type * as Api from '@opentelemetry/api';
import type * as Sdk from '@opentelemetry/sdk-node';
import type * as Http from '@opentelemetry/instrumentation-http';
import type * as Express from '@opentelemetry/instrumentation-express';
import type * as MongoDB from '@opentelemetry/instrumentation-mongodb';
import type * as IORedis from '@opentelemetry/instrumentation-ioredis';
import type { Telemetry as BullMQTelemetry } from 'bullmq';
import type * as BullMQ from 'bullmq-otel';

const ENDPOINTS = ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'];

/** The packages the SDK needs; optional: the bin works without them when no endpoint is set. */
export const TELEMETRY_PACKAGES = [
  '@opentelemetry/api',
  '@opentelemetry/sdk-node',
  '@opentelemetry/instrumentation-http',
  '@opentelemetry/instrumentation-express',
  '@opentelemetry/instrumentation-mongodb',
  '@opentelemetry/instrumentation-ioredis',
  'bullmq-otel',
];

export interface Telemetry {
  /** BullMQ's telemetry, for the producer and the workers. */
  bullmq: BullMQTelemetry;
  /** The active span's ids, for log lines. */
  traceFields(): { trace_id?: string; span_id?: string };
  /** Flush and stop; call it last at shutdown. */
  shutdown(): Promise<void>;
}

/** A path segment that may name a session or carry a token: hex ids, long opaque strings. */
const SECRET_LOOKING = /^(?:[0-9a-f]{16,}|[A-Za-z0-9_-]{24,}|rt_.*)$/;

/** `path` with every segment that may be an id or a token replaced by `:redacted`. */
export function redactPath(path: string): string {
  return path
    .split('/')
    .map((segment) => (SECRET_LOOKING.test(segment) ? ':redacted' : segment))
    .join('/');
}

/** A query string's names, every value replaced. */
export function redactQuery(search: string): string {
  return [...new URLSearchParams(search).keys()].map((name) => `${name}=REDACTED`).join('&');
}

/** The SDK, started, or null when no OTLP endpoint is configured. Exits 78 if it is not installed. */
export function startTelemetry(serviceName: string): Telemetry | null {
  if (!ENDPOINTS.some((name) => process.env[name])) return null;
  // From this file in CommonJS (the bin, tsx); from the working directory in an ES module build.
  const load = createRequire(
    typeof __filename === 'string' ? __filename : join(process.cwd(), 'x.js'),
  );
  let modules: Record<string, unknown>;
  try {
    modules = Object.fromEntries(TELEMETRY_PACKAGES.map((name) => [name, load(name)]));
  } catch (error) {
    process.stderr.write(
      `refresh-rotation: OTEL_EXPORTER_OTLP_ENDPOINT is set, but the OpenTelemetry SDK is not installed ` +
        `(${(error as Error).message.split('\n')[0]}). Install: npm install ${TELEMETRY_PACKAGES.join(' ')}\n`,
    );
    process.exit(78); // EX_CONFIG
  }
  const api = modules['@opentelemetry/api'] as unknown as typeof Api;
  const { NodeSDK } = modules['@opentelemetry/sdk-node'] as unknown as typeof Sdk;
  const { HttpInstrumentation } = modules[
    '@opentelemetry/instrumentation-http'
  ] as unknown as typeof Http;
  const { ExpressInstrumentation } = modules[
    '@opentelemetry/instrumentation-express'
  ] as unknown as typeof Express;
  const { MongoDBInstrumentation } = modules[
    '@opentelemetry/instrumentation-mongodb'
  ] as unknown as typeof MongoDB;
  const { IORedisInstrumentation } = modules[
    '@opentelemetry/instrumentation-ioredis'
  ] as unknown as typeof IORedis;
  const { BullMQOtel } = modules['bullmq-otel'] as unknown as typeof BullMQ;

  const sdk = new NodeSDK({
    serviceName: process.env.OTEL_SERVICE_NAME ?? serviceName,
    instrumentations: [
      new HttpInstrumentation({
        startIncomingSpanHook: (request) => {
          const url = new URL(request.url ?? '/', 'http://localhost');
          return {
            'url.path': redactPath(url.pathname),
            ...(url.search ? { 'url.query': redactQuery(url.search) } : {}),
          };
        },
      }),
      new ExpressInstrumentation(),
      new MongoDBInstrumentation(),
      new IORedisInstrumentation({ dbStatementSerializer: (command) => command }),
    ],
  });
  sdk.start();
  return {
    bullmq: new BullMQOtel({ tracerName: serviceName }),
    traceFields() {
      const context = api.trace.getActiveSpan()?.spanContext();
      return context ? { trace_id: context.traceId, span_id: context.spanId } : {};
    },
    shutdown: () => sdk.shutdown(),
  };
}
