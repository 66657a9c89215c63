/**
 * The bounded graceful close of the workers: stop fetching, let active jobs finish for most of
 * the budget, then put the ones still running back in their queue, then force. Jobs are
 * idempotent, so an abandoned attempt that still finishes its write is harmless.
 */
import { setMaxListeners } from 'node:events';
import { WaitingError, type Job, type Queue, type Worker } from 'bullmq';
import type { WorkerLogger } from './logger';

/** How a close went. */
export interface CloseReport {
  /** Jobs still active at the deadline, put back in their queue's wait list for another worker. */
  returnedJobs: number;
  /** True when even returning them did not finish in time and the workers were force-closed. */
  forced: boolean;
  durationMs: number;
}

/** Shared by the processors' wrappers and the close: aborted when active jobs must go back. */
export interface ReturnSwitch {
  readonly signal: AbortSignal;
  abort(): void;
  /** Jobs put back so far. */
  returned: number;
}

const ABORTED = Symbol('aborted');

/** A switch whose signal every active job listens on (the touch worker runs a whole batch at once). */
export function createReturnSwitch(): ReturnSwitch {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return {
    signal: controller.signal,
    abort: () => controller.abort(),
    returned: 0,
  };
}

/**
 * Wrap a processor so that, once the switch is thrown (the shutdown deadline), a job still running
 * is moved back to its queue's wait list and BullMQ is told so (`WaitingError`): another worker
 * takes it without waiting for its lock to expire. The abandoned attempt may still finish its
 * write; every processor is idempotent, so the repeat is harmless.
 */
export function returnOnShutdown<T>(
  processor: (job: Job) => Promise<T>,
  returning: ReturnSwitch,
): (job: Job, token?: string) => Promise<T> {
  const { signal } = returning;
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
    returning.returned += 1;
    throw new WaitingError();
  };
}

/** What {@link closeWithin} closes. */
export interface Closable {
  workers: readonly Worker[];
  queues: readonly Queue[];
  returning: ReturnSwitch;
  /** Flushes work held in memory (the touch batch); awaited only as far as the budget allows. */
  drain: () => Promise<void>;
  logger: WorkerLogger;
}

/**
 * Close within `deadlineMs`: active jobs may finish for 60 % of it; those still running are then
 * returned to their queues; at 80 % the workers are force-closed; the queues get the rest.
 */
export async function closeWithin(target: Closable, deadlineMs: number): Promise<CloseReport> {
  const { workers, queues, returning, logger } = target;
  const started = performance.now();
  const left = (fraction: number) =>
    Math.max(0, deadlineMs * fraction - (performance.now() - started));
  const closingWorkers = Promise.all(workers.map((worker) => worker.close()));
  void target.drain();
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
      await settlesWithin(Promise.all(workers.map((worker) => worker.close(true))), left(0.9));
    }
  }
  await settlesWithin(Promise.allSettled(queues.map((queue) => queue.close())), left(1));
  return {
    returnedJobs: returning.returned,
    forced,
    durationMs: Math.round(performance.now() - started),
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
