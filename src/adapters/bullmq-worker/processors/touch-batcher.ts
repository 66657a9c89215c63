/**
 * The touch batcher: the touches that arrive together are coalesced into one `touchMany` (`$max`),
 * written when the batch is full or a few milliseconds after its first touch. Each touch's promise
 * resolves only after the write that carries it succeeded; if that write fails, every touch in it
 * is rejected (and its job retried: `$max` makes a repeat harmless).
 */
import type { Touch } from '../../../domain/refresh-token';
import type { RefreshTokenRepository } from '../../../domain/refresh-token-repository';

/** Settings of a {@link TouchBatcher}. */
export interface TouchBatcherOptions {
  /** A batch is written as soon as it holds this many touches. */
  maxBatch: number;
  /** ...or this long after its first touch arrived. */
  flushAfterMs: number;
}

/** Counters of a {@link TouchBatcher}. */
export interface TouchBatcherStats {
  /** Touches received (one per job). */
  touches: number;
  /** `touchMany` calls made: the database writes. */
  writes: number;
  /** Writes that failed (their jobs are retried). */
  failedWrites: number;
  /** Records whose `lastUsedAt` moved forward. */
  recordsChanged: number;
}

interface Pending {
  touch: Touch;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Coalesces concurrent touches into batched `touchMany` calls. */
export class TouchBatcher {
  private batch: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly writing = new Set<Promise<void>>();
  private readonly counters: TouchBatcherStats = {
    touches: 0,
    writes: 0,
    failedWrites: 0,
    recordsChanged: 0,
  };

  constructor(
    private readonly repository: RefreshTokenRepository,
    private readonly options: TouchBatcherOptions,
  ) {}

  /** Resolves once a `touchMany` carrying this touch has succeeded; rejects if that write failed. */
  add(touch: Touch): Promise<void> {
    this.counters.touches += 1;
    return new Promise<void>((resolve, reject) => {
      this.batch.push({ touch, resolve, reject });
      if (this.batch.length >= this.options.maxBatch) {
        this.flush();
      } else if (this.timer === undefined) {
        this.timer = setTimeout(() => this.flush(), this.options.flushAfterMs);
      }
    });
  }

  /** Write the current batch now (used at shutdown); resolves when every write in flight settled. */
  async drain(): Promise<void> {
    this.flush();
    await Promise.allSettled([...this.writing]);
  }

  stats(): TouchBatcherStats {
    return { ...this.counters };
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.batch;
    this.batch = [];
    if (batch.length === 0) return;
    const write = this.write(batch);
    this.writing.add(write);
    void write.finally(() => this.writing.delete(write));
  }

  private async write(batch: readonly Pending[]): Promise<void> {
    this.counters.writes += 1;
    try {
      // The batch goes as it is: touchMany keeps the latest touch of each session (the port's promise).
      this.counters.recordsChanged += await this.repository.touchMany(
        batch.map((pending) => pending.touch),
      );
    } catch (error) {
      this.counters.failedWrites += 1;
      for (const pending of batch) pending.reject(error);
      return;
    }
    for (const pending of batch) pending.resolve();
  }
}
