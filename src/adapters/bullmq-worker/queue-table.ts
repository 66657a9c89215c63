/**
 * The queue table: for each job kind (revoke-all, touch, cleanup) its BullMQ Worker, with its
 * processor and concurrency, and its Queue (for health counts and the cleanup scheduler), plus the
 * listeners that log each job's outcome and keep the counters the health report shows.
 */
import { hostname } from 'node:os';
import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { KEEP_COMPLETED, KEEP_FAILED, QUEUE_NAMES } from '../bullmq/jobs';
import type { Clock } from '../../domain/refresh-token';
import type { RefreshTokenRepository } from '../../domain/refresh-token-repository';
import type { WorkerLogger } from './logger';
import { createCleanupProcessor, type CleanupResult } from './processors/cleanup';
import { createRevokeAllProcessor } from './processors/revoke-all';
import { createTouchProcessor } from './processors/touch';
import { TouchBatcher } from './processors/touch-batcher';
import { returnOnShutdown, type ReturnSwitch } from './shutdown';

/** The job kinds, as keys of {@link QUEUE_NAMES}. */
export type QueueKey = keyof typeof QUEUE_NAMES;

/** Settings of the cleanup runs and their schedule. */
export interface CleanupSettings {
  /** Cron pattern of the cleanup job scheduler. */
  readonly cron: string;
  /** Records are deleted this long after they expired or were revoked. */
  readonly retentionMs: number;
  /** Records deleted per batch (one query each). */
  readonly batchSize: number;
  /** One cleanup run stops after this long; the next run continues. */
  readonly timeBudgetMs: number;
}

/** What `onJobFinished` receives after each job attempt. Carries ids, never a token. */
export interface JobFinishedEvent {
  /** The queue's name (`rr-revoke-all`, `rr-touch`, `rr-cleanup`). */
  queue: string;
  /** The job's name and id. */
  name: string;
  jobId: string | undefined;
  outcome: 'completed' | 'failed';
  /** From the moment a worker took the job to its end, as BullMQ recorded them; null when unknown. */
  durationMs: number | null;
}

/** What {@link createQueueTable} needs: resolved settings, nothing optional. */
export interface QueueTableSettings {
  repository: RefreshTokenRepository;
  connection: ConnectionOptions;
  prefix: string;
  concurrency: number;
  touchBatchSize: number;
  touchFlushMs: number;
  lockDurationMs: number;
  cleanup: CleanupSettings;
  clock: Clock;
  logger: WorkerLogger;
  onJobFinished: ((event: JobFinishedEvent) => void) | undefined;
  /** Aborted at shutdown: a cleanup run stops after its current batch. */
  stopSignal: AbortSignal;
  returning: ReturnSwitch;
}

/** Jobs completed and failed per queue name since start. */
export type ProcessedCounts = Record<string, { completed: number; failed: number }>;

/** The Workers and Queues, not yet running, and what they count. */
export interface QueueTable {
  workers: Record<QueueKey, Worker>;
  queues: Record<QueueKey, Queue>;
  batcher: TouchBatcher;
  processed: ProcessedCounts;
  lastCleanup(): (CleanupResult & { finishedAt: string }) | null;
}

/** Build the three Workers (with `autorun: false`) and Queues, with their listeners. */
export function createQueueTable(settings: QueueTableSettings): QueueTable {
  const { repository, connection, prefix, logger, returning } = settings;
  const batcher = new TouchBatcher(repository, {
    maxBatch: settings.touchBatchSize,
    flushAfterMs: settings.touchFlushMs,
  });
  const base = {
    connection,
    prefix,
    lockDuration: settings.lockDurationMs,
    stalledInterval: settings.lockDurationMs,
    maxStalledCount: 3,
    name: `${hostname()}:${process.pid}`,
    autorun: false,
  };
  const cleanupProcessor = createCleanupProcessor(repository, {
    retentionMs: settings.cleanup.retentionMs,
    batchSize: settings.cleanup.batchSize,
    timeBudgetMs: settings.cleanup.timeBudgetMs,
    clock: settings.clock,
    stopSignal: settings.stopSignal,
    onBatch: (deleted, batch) =>
      logger.debug({ queue: QUEUE_NAMES.cleanup, batch, deleted }, 'cleanup batch'),
  });
  const workers: Record<QueueKey, Worker> = {
    revokeAll: new Worker(
      QUEUE_NAMES.revokeAll,
      returnOnShutdown(createRevokeAllProcessor(repository), returning),
      {
        ...base,
        concurrency: settings.concurrency,
        removeOnComplete: KEEP_COMPLETED.revokeAll,
        removeOnFail: KEEP_FAILED.revokeAll,
      },
    ),
    touch: new Worker(
      QUEUE_NAMES.touch,
      returnOnShutdown(createTouchProcessor(batcher), returning),
      {
        ...base,
        concurrency: settings.touchBatchSize,
        removeOnComplete: KEEP_COMPLETED.touch,
        removeOnFail: KEEP_FAILED.touch,
      },
    ),
    cleanup: new Worker(QUEUE_NAMES.cleanup, returnOnShutdown(cleanupProcessor, returning), {
      ...base,
      concurrency: 1,
      removeOnComplete: KEEP_COMPLETED.cleanup,
      removeOnFail: KEEP_FAILED.cleanup,
    }),
  };
  const queues: Record<QueueKey, Queue> = {
    revokeAll: new Queue(QUEUE_NAMES.revokeAll, { connection, prefix }),
    touch: new Queue(QUEUE_NAMES.touch, { connection, prefix }),
    cleanup: new Queue(QUEUE_NAMES.cleanup, { connection, prefix }),
  };

  /** A throwing hook must not break the worker's own bookkeeping. */
  function report(queue: string, job: Job | undefined, outcome: JobFinishedEvent['outcome']) {
    if (!settings.onJobFinished) return;
    const { processedOn, finishedOn } = job ?? {};
    try {
      settings.onJobFinished({
        queue,
        name: job?.name ?? 'unknown',
        jobId: job?.id,
        outcome,
        durationMs:
          processedOn !== undefined && finishedOn !== undefined ? finishedOn - processedOn : null,
      });
    } catch {
      // ignored on purpose, like the audit hook
    }
  }

  const processed: ProcessedCounts = {};
  let lastCleanup: (CleanupResult & { finishedAt: string }) | null = null;
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
      report(name, job, 'completed');
      if (key === 'revokeAll')
        logger.info({ queue: name, jobId: job.id, result }, 'revoke-all done');
      if (key === 'cleanup') {
        lastCleanup = {
          ...(result as CleanupResult),
          finishedAt: settings.clock.now().toISOString(),
        };
        logger.info({ queue: name, jobId: job.id, ...(result as CleanupResult) }, 'cleanup done');
      }
    });
    worker.on('failed', (job: Job | undefined, error: Error) => {
      counts.failed += 1;
      report(name, job, 'failed');
      logger.warn(
        { queue: name, jobId: job?.id, attemptsMade: job?.attemptsMade, err: error },
        'job attempt failed',
      );
    });
    queues[key].on('error', (error) => logger.error({ err: error, queue: name }, 'queue error'));
  }
  return { workers, queues, batcher, processed, lastCleanup: () => lastCleanup };
}
