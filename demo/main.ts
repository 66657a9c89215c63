/**
 * `npm run demo`: the demo app and, when MongoDB and Redis are configured, the worker beside it
 * (a child process, as in production). With neither MONGODB_URI nor REDIS_URL set it runs on the
 * in-memory adapters with inline jobs and generated development secrets; `loadEnv` refuses that
 * with NODE_ENV=production.
 */
// First: the SDK (when configured) must patch express and the drivers before they load.
import './telemetry';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { loadDotEnv } from '../startup/env-reader';
import { routeConsoleTo } from '../startup/logging';
import { loadEnv } from './env';
import { createLogger, exitOnStartupError, onShutdown, serve } from './serve';

function startWorker(logger: Logger): ChildProcess {
  // The same TypeScript loader this process runs under (tsx), else tsx by name.
  const loader = process.execArgv.length > 0 ? process.execArgv : ['--import', 'tsx'];
  const child = spawn(process.execPath, [...loader, join(__dirname, '..', 'workers', 'main.ts')], {
    stdio: 'inherit',
    env: process.env,
  });
  child.on('exit', (code, signal) => logger.info({ code, signal }, 'worker exited'));
  return child;
}

function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

async function main(): Promise<void> {
  loadDotEnv();
  const env = loadEnv();
  const logger = createLogger(env);
  routeConsoleTo(logger);
  const serving = await serve(env, logger);
  const worker = serving.runtime.mode === 'mongodb+bullmq' ? startWorker(logger) : null;
  onShutdown(
    logger,
    async () => {
      await Promise.all([serving.close(), worker ? stopWorker(worker) : Promise.resolve()]);
    },
    30_000,
  );
}

main().catch(exitOnStartupError);
