/**
 * The BullMQ side of the worker process: one Worker per queue (revoke-all, touch, cleanup), the
 * cleanup job scheduler, health figures, and a bounded graceful close. `main.ts` wires it to the
 * environment; tests may start it in-process on their own connections.
 */
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { Queue, WaitingError, Worker, type Job, type JobType } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  CLEANUP_SCHEDULER_ID,
  JOB_NAMES,
  KEEP_COMPLETED,
  KEEP_FAILED,
  QUEUE_NAMES,
  RETRY,
} from '../src/adapters/bullmq/jobs';
import { systemClock, type Clock } from '../src/domain/refresh-token';
import type { RefreshTokenRepository } from '../src/domain/refresh-token-repository';
import type { CleanupSettings } from './env';
import { createCleanupProcessor, type CleanupResult } from './processors/cleanup';
import { createRevokeAllProcessor } from './processors/revoke-all';
import { TouchBatcher, createTouchProcessor, type TouchBatcherStats } from './processors/touch';

type QueueKey = keyof typeof QUEUE_NAMES;

/** What {@link startTokenWorkers} needs. */
export interface TokenWorkersOptions {
  repository: RefreshTokenRepository;
  /**
   * An ioredis client with `maxRetriesPerRequest: null` (BullMQ's requirement for workers). Shared
   * by every Worker and Queue here (BullMQ duplicates it for blocking reads); not closed by
   * {@link TokenWorkers.close}.
   */
  connection: Redis;
  prefix: string;
  /** Parallel revoke-all jobs per process (cleanup runs one at a time per process). */
  concurrency: number;
  touchBatchSize: number;
  touchFlushMs: number;
  cleanup: CleanupSettings;
  /** How long a job's lock lives without renewal; a crashed worker's jobs return after it. Default 30 s. */
  lockDurationMs?: number;
  /** Register the cleanup job scheduler (upsert: harmless when it exists). Default true. */
  scheduleCleanup?: boolean;
  clock?: Clock;
  logger: Logger;
}

/** Job counts of one queue, as BullMQ reports them. */
export type QueueCounts = Partial<Record<JobType, number>>;

/** The worker's state, for `/healthz` and the periodic log line. */
export interface HealthReport {
  status: 'ok' | 'degraded' | 'stopping';
  /** ioredis status of the shared connection (`ready` when healthy). */
  redis: string;
  queues: Record<string, QueueCounts | null>;
  processed: Record<string, { completed: number; failed: number }>;
  touch: TouchBatcherStats;
  lastCleanup: (CleanupResult & { finishedAt: string }) | null;
}

/** How a close went. */
export interface CloseReport {
  /** Jobs still active at the deadline, put back in their queue's wait list for another worker. */
  returnedJobs: number;
  /** True when even returning them did not finish in time and the workers were force-closed. */
  forced: boolean;
  durationMs: number;
}

/** The running workers. */
export interface TokenWorkers {
  health(): Promise<HealthReport>;
  /**
   * Stop taking jobs, let the active ones finish, and at `deadlineMs` put those still running back
   * in their queue; force-close if that too overruns. Idempotent.
   */
  close(deadlineMs: number): Promise<CloseReport>;
}

const DEFAULT_LOCK_DURATION_MS = 30_000;
const ABORTED = Symbol('aborted');
const HEALTH_QUERY_TIMEOUT_MS = 1_000;

/** Start the three workers and (by default) upsert the cleanup job scheduler. */
export async function startTokenWorkers(options: TokenWorkersOptions): Promise<TokenWorkers> {
  const { connection, prefix, logger } = options;
  const clock = options.clock ?? systemClock;
  const stopping = new AbortController();
  const returning = new AbortController();
  // Every active job listens on it (the touch worker runs a whole batch at once): no leak warning.
  setMaxListeners(0, returning.signal);
  const processed: HealthReport['processed'] = {};
  let lastCleanup: HealthReport['lastCleanup'] = null;
  const batcher = new TouchBatcher(options.repository, {
    maxBatch: options.touchBatchSize,
    flushAfterMs: options.touchFlushMs,
  });
  const returned = { count: 0 };
  const lockDuration = options.lockDurationMs ?? DEFAULT_LOCK_DURATION_MS;
  const baseWorkerOptions = {
    connection,
    prefix,
    lockDuration,
    stalledInterval: lockDuration,
    maxStalledCount: 3,
    name: `${hostname()}:${process.pid}`,
    autorun: false,
  };

  const workers: Record<QueueKey, Worker> = {
    revokeAll: new Worker(
      QUEUE_NAMES.revokeAll,
      returnOnShutdown(createRevokeAllProcessor(options.repository), returning.signal, returned),
      {
        ...baseWorkerOptions,
        concurrency: options.concurrency,
        removeOnComplete: KEEP_COMPLETED.revokeAll,
        removeOnFail: KEEP_FAILED.revokeAll,
      },
    ),
    touch: new Worker(
      QUEUE_NAMES.touch,
      returnOnShutdown(createTouchProcessor(batcher), returning.signal, returned),
      {
        ...baseWorkerOptions,
        concurrency: options.touchBatchSize,
        removeOnComplete: KEEP_COMPLETED.touch,
        removeOnFail: KEEP_FAILED.touch,
      },
    ),
    cleanup: new Worker(
      QUEUE_NAMES.cleanup,
      returnOnShutdown(
        createCleanupProcessor(options.repository, {
          retentionMs: options.cleanup.retentionMs,
          batchSize: options.cleanup.batchSize,
          timeBudgetMs: options.cleanup.timeBudgetMs,
          clock,
          stopSignal: stopping.signal,
          onBatch: (deleted, batch) =>
            logger.debug({ queue: QUEUE_NAMES.cleanup, batch, deleted }, 'cleanup batch'),
        }),
        returning.signal,
        returned,
      ),
      {
        ...baseWorkerOptions,
        concurrency: 1,
        removeOnComplete: KEEP_COMPLETED.cleanup,
        removeOnFail: KEEP_FAILED.cleanup,
      },
    ),
  };
  const queues: Record<QueueKey, Queue> = {
    revokeAll: new Queue(QUEUE_NAMES.revokeAll, { connection, prefix }),
    touch: new Queue(QUEUE_NAMES.touch, { connection, prefix }),
    cleanup: new Queue(QUEUE_NAMES.cleanup, { connection, prefix }),
  };

  for (const key of Object.keys(workers) as QueueKey[]) {
    const name = QUEUE_NAMES[key];
    const counts = (processed[name] = { completed: 0, failed: 0 });
    const worker = workers[key];
    worker.on('error', (error) => logger.error({ err: error, queue: name }, 'worker error'));
    worker.on('stalled', (jobId) =>
      logger.warn({ queue: name, jobId }, 'job stalled: returned to the queue'),
    );
    worker.on('completed', (job: Job, result: unknown) => {
      counts.completed += 1;
      if (key === 'revokeAll')
        logger.info({ queue: name, jobId: job.id, result }, 'revoke-all done');
      if (key === 'cleanup') {
        lastCleanup = { ...(result as CleanupResult), finishedAt: clock.now().toISOString() };
        logger.info({ queue: name, jobId: job.id, ...(result as CleanupResult) }, 'cleanup done');
      }
    });
    worker.on('failed', (job: Job | undefined, error: Error) => {
      counts.failed += 1;
      logger.warn(
        { queue: name, jobId: job?.id, attemptsMade: job?.attemptsMade, err: error },
        'job attempt failed',
      );
    });
    queues[key].on('error', (error) => logger.error({ err: error, queue: name }, 'queue error'));
  }

  await Promise.all(Object.values(queues).map((queue) => queue.waitUntilReady()));
  const scheduleCleanup = () =>
    queues.cleanup.upsertJobScheduler(
      CLEANUP_SCHEDULER_ID,
      { pattern: options.cleanup.cron },
      {
        name: JOB_NAMES.cleanup,
        data: {},
        opts: {
          ...RETRY.cleanup,
          removeOnComplete: KEEP_COMPLETED.cleanup,
          removeOnFail: KEEP_FAILED.cleanup,
        },
      },
    );
  if (options.scheduleCleanup ?? true) {
    await scheduleCleanup();
    // A Redis that restarted without persistence lost the scheduler: upsert it again on reconnect.
    connection.on('ready', onReconnect);
  }
  function onReconnect() {
    if (stopping.signal.aborted) return;
    scheduleCleanup().then(
      () =>
        logger.info(
          { cron: options.cleanup.cron },
          'redis reconnected: cleanup scheduler upserted',
        ),
      (error: unknown) =>
        logger.warn({ err: error }, 'could not upsert the cleanup scheduler after a reconnect'),
    );
  }
  for (const worker of Object.values(workers)) {
    worker
      .run()
      .catch((error: unknown) => logger.error({ err: error }, 'worker stopped on an error'));
  }
  await Promise.all(Object.values(workers).map((worker) => worker.waitUntilReady()));

  async function health(): Promise<HealthReport> {
    const entries = await Promise.all(
      (Object.keys(queues) as QueueKey[]).map(async (key) => {
        // The shared connection queues commands while Redis is away: never wait on it here.
        const counts =
          connection.status === 'ready'
            ? await withTimeout(
                queues[key].getJobCounts(
                  'waiting',
                  'active',
                  'delayed',
                  'prioritized',
                  'failed',
                  'completed',
                ),
                HEALTH_QUERY_TIMEOUT_MS,
              )
            : null;
        return [QUEUE_NAMES[key], counts] as const;
      }),
    );
    const reachable = entries.every(([, counts]) => counts !== null);
    return {
      status: stopping.signal.aborted
        ? 'stopping'
        : reachable && connection.status === 'ready'
          ? 'ok'
          : 'degraded',
      redis: connection.status,
      queues: Object.fromEntries(entries),
      processed: structuredClone(processed),
      touch: batcher.stats(),
      lastCleanup,
    };
  }

  let closing: Promise<CloseReport> | undefined;
  async function doClose(deadlineMs: number): Promise<CloseReport> {
    const started = performance.now();
    const left = (fraction: number) =>
      Math.max(0, deadlineMs * fraction - (performance.now() - started));
    stopping.abort();
    connection.off('ready', onReconnect);
    const closingWorkers = Promise.all(Object.values(workers).map((worker) => worker.close()));
    void batcher.drain();
    // Let the active jobs finish for most of the budget; then put back those still running; then force.
    let forced = false;
    if (!(await settlesWithin(closingWorkers, left(0.6)))) {
      logger.warn(
        { deadlineMs },
        'active jobs still running near the deadline: returning them to their queues',
      );
      returning.abort();
      if (!(await settlesWithin(closingWorkers, left(0.8)))) {
        forced = true;
        logger.error(
          'workers did not close in time: force-closing (their jobs return when their locks expire)',
        );
        await settlesWithin(
          Promise.all(Object.values(workers).map((worker) => worker.close(true))),
          left(0.9),
        );
      }
    }
    await settlesWithin(
      Promise.allSettled(Object.values(queues).map((queue) => queue.close())),
      left(1),
    );
    return {
      returnedJobs: returned.count,
      forced,
      durationMs: Math.round(performance.now() - started),
    };
  }

  return {
    health,
    close: (deadlineMs) => (closing ??= doClose(deadlineMs)),
  };
}

/**
 * Wrap a processor so that, once `signal` aborts (the shutdown deadline), a job still running is
 * moved back to its queue's wait list and BullMQ is told so (`WaitingError`): another worker takes
 * it without waiting for its lock to expire. The abandoned attempt may still finish its write;
 * every processor is idempotent, so the repeat is harmless.
 */
function returnOnShutdown<T>(
  processor: (job: Job) => Promise<T>,
  signal: AbortSignal,
  returned: { count: number },
): (job: Job, token?: string) => Promise<T> {
  return async function processOrReturn(job, token) {
    const work = processor(job);
    if (signal.aborted) return work;
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<typeof ABORTED>((resolve) => {
      onAbort = () => resolve(ABORTED);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const outcome = await Promise.race([work, aborted]);
      if (outcome !== ABORTED) return outcome;
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
    work.catch(() => undefined);
    await job.moveToWait(token);
    returned.count += 1;
    throw new WaitingError();
  };
}

/** Whether `promise` settled (either way) within `ms`. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The value, or null if it rejects or takes longer than `ms`. */
async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
  });
  try {
    return await Promise.race([promise.catch(() => null), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
