/**
 * Imported first by the demo's entries (demo/main.ts, demo/server.ts), so the instrumentations
 * patch express and the drivers before they load: the SDK when an OTLP endpoint is configured,
 * else null (startup/telemetry.ts). A worker the demo spawns starts its own.
 */
import { startTelemetry } from '../startup/telemetry';

export const telemetry = startTelemetry('refresh-rotation-demo');
