/** The cleanup job scheduler: one BullMQ job scheduler that adds a `cleanup` job on a cron pattern. */
import type { Queue } from 'bullmq';
import {
  CLEANUP_SCHEDULER_ID,
  JOB_NAMES,
  KEEP_COMPLETED,
  KEEP_FAILED,
  RETRY,
} from '../bullmq/jobs';

/**
 * Create or update the cleanup job scheduler (id `cleanup`) on `queue`, the `cleanup` queue of your
 * prefix, with the cron pattern `cron` (e.g. `'*\/10 * * * *'`). An upsert: every worker may call
 * it at start, and again after a Redis restart that lost it.
 */
export async function upsertCleanupScheduler(queue: Queue, cron: string): Promise<void> {
  await queue.upsertJobScheduler(
    CLEANUP_SCHEDULER_ID,
    { pattern: cron },
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
}
