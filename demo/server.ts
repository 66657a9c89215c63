/**
 * `npm start` (compiled: build/demo/server.js, after `npm run build`) and `npm run start:dev`
 * (TypeScript through tsx): the demo app alone; the worker runs separately. `.env` is read when
 * present.
 */
// First: the SDK (when configured) must patch express and the drivers before they load.
import './telemetry';
import { loadDotEnv } from '../startup/env-reader';
import { routeConsoleTo } from '../startup/logging';
import { loadEnv } from './env';
import { createLogger, exitOnStartupError, onShutdown, serve } from './serve';

async function main(): Promise<void> {
  loadDotEnv();
  const env = loadEnv();
  const logger = createLogger(env);
  routeConsoleTo(logger);
  const serving = await serve(env, logger);
  onShutdown(logger, serving.close);
}

main().catch(exitOnStartupError);
