/**
 * `cleanup`: delete records that expired or were revoked more than `retention` ago, in bounded
 * batches (one query each, so refresh latency does not suffer), until none is left, the time
 * budget is spent or the worker is stopping. Several runs at once are safe: each deleted record is
 * counted by the run whose delete removed it.
 */
import type { Clock } from '../../../domain/refresh-token';
import type { RefreshTokenRepository } from '../../../domain/refresh-token-repository';

/** Settings of the cleanup processor. */
export interface CleanupOptions {
  retentionMs: number;
  batchSize: number;
  timeBudgetMs: number;
  clock: Clock;
  /** Aborted when the worker is shutting down: the run stops after its current batch. */
  stopSignal?: AbortSignal | undefined;
  /** Called after each batch with how many it deleted (for debug logs). */
  onBatch?: ((deleted: number, batch: number) => void) | undefined;
}

/** What a cleanup run returns (stored by BullMQ as the job's result, and logged). */
export interface CleanupResult {
  deleted: number;
  /** `deleteExpired` calls made, including the final empty one that shows nothing is left. */
  batches: number;
  durationMs: number;
  /** ISO time: records that expired or were revoked before it were eligible. */
  before: string;
  /** Why the run ended. */
  stoppedBy: 'done' | 'time_budget' | 'shutdown';
}

/** Run one cleanup pass. */
export async function runCleanup(
  repository: RefreshTokenRepository,
  options: CleanupOptions,
): Promise<CleanupResult> {
  const started = performance.now();
  const before = new Date(options.clock.now().getTime() - options.retentionMs);
  let deleted = 0;
  let batches = 0;
  let stoppedBy: CleanupResult['stoppedBy'] = 'done';
  for (;;) {
    const count = await repository.deleteExpired({ before, limit: options.batchSize });
    batches += 1;
    deleted += count;
    options.onBatch?.(count, batches);
    // Stop only on an empty batch: a short one may be short because a concurrent run took part of it.
    if (count === 0) break;
    if (options.stopSignal?.aborted) {
      stoppedBy = 'shutdown';
      break;
    }
    if (performance.now() - started >= options.timeBudgetMs) {
      stoppedBy = 'time_budget';
      break;
    }
  }
  return {
    deleted,
    batches,
    durationMs: Math.round(performance.now() - started),
    before: before.toISOString(),
    stoppedBy,
  };
}

/** The `cleanup` processor (its payload is empty: the worker's settings decide). */
export function createCleanupProcessor(
  repository: RefreshTokenRepository,
  options: CleanupOptions,
): () => Promise<CleanupResult> {
  return function processCleanup() {
    return runCleanup(repository, options);
  };
}
