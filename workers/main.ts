#!/usr/bin/env node
/**
 * The worker process, the `refresh-rotation-worker` bin (`npm run worker` here): `.env` when
 * present → environment (workers/env.ts) → `/healthz` (503 while starting; workers/health-server.ts)
 * → MongoDB and Redis, retried until WORKER_STARTUP_TIMEOUT, then exit 1 naming the service and its
 * variable (workers/service-probe.ts) → `startTokenWorkers` and a periodic health log line
 * (workers/running-worker.ts) → on SIGTERM/SIGINT a graceful close within WORKER_SHUTDOWN_TIMEOUT,
 * exit 0. Several processes may run against the same queues. Logs are JSON lines (pino) on stdout;
 * what BullMQ prints on the console goes through the same logger.
 */
// First: the SDK (when configured) must patch the drivers before anything loads them.
import { telemetry } from './telemetry';
import type { Logger } from 'pino';
import { loadDotEnv } from '../startup/env-reader';
import { createPinoLogger, routeConsoleTo } from '../startup/logging';
import { StartupError } from '../startup/failures';
import { EnvError, loadWorkerEnv, type WorkerEnv } from './env';
import { openHealthPort, type HealthServer } from './health-server';
import { loadMetrics, startRunning, stopRunning, type RunningWorker } from './running-worker';
import { awaitServices, notCheckedYet, startingReport } from './service-probe';

/** What the signal handler needs to know about start-up, which it may interrupt. */
interface WorkerState {
  running: RunningWorker | undefined;
  health: HealthServer | null;
  stopping: boolean;
}

function readEnvOrExit(): WorkerEnv {
  try {
    return loadWorkerEnv();
  } catch (error) {
    if (error instanceof EnvError) {
      process.stderr.write(`refresh-rotation worker: ${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
}

function exitOnUnhandledRejection(logger: Logger): void {
  process.on('unhandledRejection', (reason) => {
    logger.fatal({ err: reason }, 'unhandled rejection');
    process.exit(1);
  });
}

function failToStart(logger: Logger, error: unknown): never {
  if (error instanceof StartupError) logger.fatal({ code: error.code }, error.message);
  else logger.fatal({ err: error }, 'worker failed to start');
  process.exit(1);
}

/**
 * On the first SIGTERM or SIGINT: exit 0 at once before the workers run, else close gracefully;
 * whatever hangs, exit 1 once WORKER_SHUTDOWN_TIMEOUT has passed.
 */
function stopOnSignals(state: WorkerState, env: WorkerEnv, logger: Logger): void {
  const onSignal = (signal: NodeJS.Signals) => {
    if (state.stopping) return;
    state.stopping = true;
    setTimeout(() => {
      logger.error('shutdown overran WORKER_SHUTDOWN_TIMEOUT: exiting');
      process.exit(1);
    }, env.worker.shutdownTimeoutMs).unref();
    if (!state.running) {
      logger.info({ signal }, 'signal before the worker was ready: exiting');
      process.exit(0);
    }
    stopRunning(state.running, state.health, env, logger, signal).then(
      async () => {
        await telemetry?.shutdown().catch(() => undefined);
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

async function main(): Promise<void> {
  loadDotEnv();
  const env = readEnvOrExit();
  const logger = createPinoLogger(
    {
      level: env.logLevel,
      base: { service: 'refresh-rotation-worker', pid: process.pid },
      ...(telemetry ? { mixin: () => telemetry!.traceFields() } : {}),
    },
    env,
  );
  routeConsoleTo(logger);
  exitOnUnhandledRejection(logger);
  const state: WorkerState = { running: undefined, health: null, stopping: false };
  stopOnSignals(state, env, logger);

  const starting = notCheckedYet();
  try {
    const metrics = await loadMetrics(logger);
    state.health = await openHealthPort(
      env.worker.healthPort,
      () => (state.running ? state.running.workers.health() : startingReport(starting)),
      metrics?.scrape,
    );
    const mongo = await awaitServices(env, logger, starting, () => state.stopping);
    state.running = await startRunning(env, logger, mongo, metrics);
  } catch (error) {
    failToStart(logger, error);
  }
  logger.info(
    {
      queuePrefix: env.queue.prefix,
      concurrency: env.worker.concurrency,
      touchBatchSize: env.worker.touchBatchSize,
      cleanupCron: env.cleanup.cron,
      healthPort: state.health?.port ?? null,
    },
    'worker ready',
  );
}

void main();
