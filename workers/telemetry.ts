/**
 * Imported first by the bin (workers/main.ts), so the instrumentations patch the drivers before
 * they load: the SDK when an OTLP endpoint is configured, else null (startup/telemetry.ts).
 */
import { startTelemetry } from '../startup/telemetry';

export const telemetry = startTelemetry('refresh-rotation-worker');
