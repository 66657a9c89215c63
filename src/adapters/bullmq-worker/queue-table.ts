/**
 * The queue table: for each job kind (revoke-all, touch, cleanup) its BullMQ Worker, with its
 * processor and concurrency, and its Queue (for health counts and the cleanup scheduler), plus the
 * listeners that log each job's outcome and keep the counters the health report shows.
 */
import { hostname } from 'node:os';
import { Queue, Worker, type ConnectionOptions, type Job, type Telemetry } from 'bullmq';
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
  telemetry: Telemetry | undefined;
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

/** The job kinds in table order. */
const QUEUE_KEYS = Object.keys(QUEUE_NAMES) as QueueKey[];

/** One entry per job kind, built by `build`. */
function perQueue<T>(build: (key: QueueKey) => T): Record<QueueKey, T> {
  return Object.fromEntries(QUEUE_KEYS.map((key) => [key, build(key)])) as Record<QueueKey, T>;
}

/** What sets one job kind's Worker apart from the others. */
interface WorkerRole {
  process: (job: Job) => Promise<unknown>;
  concurrency: number;
}

/** The processor and concurrency of each job kind. */
function rolesOf(
  settings: QueueTableSettings,
  batcher: TouchBatcher,
): Record<QueueKey, WorkerRole> {
  const { repository, logger } = settings;
  const cleanup = createCleanupProcessor(repository, {
    retentionMs: settings.cleanup.retentionMs,
    batchSize: settings.cleanup.batchSize,
    timeBudgetMs: settings.cleanup.timeBudgetMs,
    clock: settings.clock,
    stopSignal: settings.stopSignal,
    onBatch: (deleted, batch) =>
      logger.debug({ queue: QUEUE_NAMES.cleanup, batch, deleted }, 'cleanup batch'),
  });
  return {
    revokeAll: { process: createRevokeAllProcessor(repository), concurrency: settings.concurrency },
    // One touch job per slot: the batch a write carries is as large as the jobs held at once.
    touch: { process: createTouchProcessor(batcher), concurrency: settings.touchBatchSize },
    cleanup: { process: cleanup, concurrency: 1 },
  };
}

/**
 * The BullMQ Worker of one job kind, not yet running (`autorun: false`): its processor returns
 * its job to the queue at the shutdown deadline, and it keeps that kind's finished jobs as long as
 * the producer's job options say.
 */
function createWorker(key: QueueKey, role: WorkerRole, settings: QueueTableSettings): Worker {
  return new Worker(QUEUE_NAMES[key], returnOnShutdown(role.process, settings.returning), {
    connection: settings.connection,
    prefix: settings.prefix,
    concurrency: role.concurrency,
    lockDuration: settings.lockDurationMs,
    stalledInterval: settings.lockDurationMs,
    maxStalledCount: 3,
    name: `${hostname()}:${process.pid}`,
    autorun: false,
    removeOnComplete: KEEP_COMPLETED[key],
    removeOnFail: KEEP_FAILED[key],
    telemetry: settings.telemetry,
  });
}

/** Build the three Workers (with `autorun: false`) and Queues, with their listeners. */
export function createQueueTable(settings: QueueTableSettings): QueueTable {
  const { connection, prefix, logger } = settings;
  const batcher = new TouchBatcher(settings.repository, {
    maxBatch: settings.touchBatchSize,
    flushAfterMs: settings.touchFlushMs,
  });
  const roles = rolesOf(settings, batcher);
  const workers = perQueue((key) => createWorker(key, roles[key], settings));
  const queues = perQueue(
    (key) => new Queue(QUEUE_NAMES[key], { connection, prefix, telemetry: settings.telemetry }),
  );

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
  for (const key of QUEUE_KEYS) {
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
