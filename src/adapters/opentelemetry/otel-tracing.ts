/**
 * The tracing port on `@opentelemetry/api`, an optional peer: loaded on the first service built,
 * never with the package's entry, and a no-op when it is not installed or no SDK is registered
 * (the API's own default). Spans start once the import settles, a few milliseconds after the first
 * `RotationService` is constructed. The tracer is looked up per span, so an SDK started after the
 * service (as `NodeSDK.start()` often is) is still used.
 */
import type * as OpenTelemetry from '@opentelemetry/api';
import { isRefreshRotationError } from '../../domain/errors';
import {
  NO_TRACING,
  type OperationSpan,
  type OperationTracer,
  type TraceAttributes,
} from '../../domain/tracing';

const TRACER_NAME = 'refresh-rotation';

let api: typeof OpenTelemetry | null = null;
let loading: Promise<void> | undefined;

function load(): void {
  loading ??= import('@opentelemetry/api').then(
    (module) => {
      api = module.trace ? module : null;
    },
    () => {
      api = null; // not installed: tracing stays off
    },
  );
}

/** What a thrown error becomes on the span: its library code, else its class, never its message. */
function errorType(error: unknown): string {
  if (isRefreshRotationError(error)) return error.code;
  return error instanceof Error ? error.name : 'unknown';
}

/** Only the port's attributes, each a string, number or boolean. */
function attributesOf(attributes: TraceAttributes): OpenTelemetry.Attributes {
  const out: OpenTelemetry.Attributes = {};
  for (const [name, value] of Object.entries(attributes))
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
      out[name] = value;
  return out;
}

/** Spans through `@opentelemetry/api`, once it has loaded; `NO_TRACING` until then. */
export function openTelemetryTracing(): OperationTracer {
  load();
  return {
    run(operation, work) {
      const otel = api;
      if (otel === null) return NO_TRACING.run(operation, work);
      const tracer = otel.trace.getTracer(TRACER_NAME);
      return tracer.startActiveSpan(
        `${TRACER_NAME}.${operation}`,
        { kind: otel.SpanKind.INTERNAL },
        async (span) => {
          const handle: OperationSpan = {
            set: (values) => span.setAttributes(attributesOf(values)),
          };
          try {
            return await work(handle);
          } catch (error) {
            const type = errorType(error);
            span.setAttribute('error.type', type);
            span.setStatus({ code: otel.SpanStatusCode.ERROR, message: type });
            throw error;
          } finally {
            span.end();
          }
        },
      );
    },
  };
}

/** Resolves once `@opentelemetry/api` has loaded or failed to (tests, and a start-up that waits). */
export function tracingReady(): Promise<void> {
  load();
  return loading!;
}
