/**
 * The worker's health report (for `/healthz` and the periodic log line): Redis and, when the
 * workers run on a Mongoose connection, MongoDB state; each queue's BullMQ job counts; jobs
 * processed; touch writes; the last cleanup. It never waits on a disconnected Redis.
 */
import type { JobType } from 'bullmq';
import type { Connection } from 'mongoose';
import { QUEUE_NAMES } from '../bullmq/jobs';
import type { CleanupResult } from './processors/cleanup';
import type { TouchBatcherStats } from './processors/touch-batcher';
import type { QueueKey, QueueTable } from './queue-table';

/** Job counts of one queue, as BullMQ reports them. */
export type QueueCounts = Partial<Record<JobType, number>>;

/** The worker's state, for `/healthz` and the periodic log line. */
export interface HealthReport {
  /** `ok` when Redis (and MongoDB, when known) answer; `stopping` once `close()` began. */
  status: 'ok' | 'degraded' | 'stopping';
  /** ioredis status of the Redis connection (`ready` when healthy). */
  redis: string;
  /** Mongoose connection state (`connected` when healthy); present when started on a connection. */
  mongodb?: string | undefined;
  queues: Record<string, QueueCounts | null>;
  processed: Record<string, { completed: number; failed: number }>;
  touch: TouchBatcherStats;
  lastCleanup: (CleanupResult & { finishedAt: string }) | null;
}

const HEALTH_QUERY_TIMEOUT_MS = 1_000;

const MONGOOSE_STATES: Readonly<Record<number, string>> = {
  0: 'disconnected',
  1: 'connected',
  2: 'connecting',
  3: 'disconnecting',
};

/** What the report reads. */
export interface HealthSources {
  table: QueueTable;
  /** The ioredis client the workers share (its `status`). */
  redis: { readonly status: string };
  mongoose: Connection | undefined;
  stopping: AbortSignal;
}

/** A function that builds a fresh {@link HealthReport} on each call. */
export function createHealthReporter(sources: HealthSources): () => Promise<HealthReport> {
  const { table, redis, mongoose, stopping } = sources;
  return async function health() {
    const entries = await Promise.all(
      (Object.keys(table.queues) as QueueKey[]).map(async (key) => {
        // The shared connection queues commands while Redis is away: never wait on it here.
        const counts =
          redis.status === 'ready'
            ? await withTimeout(
                table.queues[key].getJobCounts(
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
    const mongodb =
      mongoose === undefined
        ? undefined
        : (MONGOOSE_STATES[mongoose.readyState] ?? String(mongoose.readyState));
    const healthy =
      entries.every(([, counts]) => counts !== null) &&
      redis.status === 'ready' &&
      (mongodb === undefined || mongodb === 'connected');
    return {
      status: stopping.aborted ? 'stopping' : healthy ? 'ok' : 'degraded',
      redis: redis.status,
      mongodb,
      queues: Object.fromEntries(entries),
      processed: structuredClone(table.processed),
      touch: table.batcher.stats(),
      lastCleanup: table.lastCleanup(),
    };
  };
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
