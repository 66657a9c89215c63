import { Queue, type Telemetry } from 'bullmq';
import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import { OptionsError, StoreUnavailableError } from '../../domain/errors';
import type { RevokeAllJob, TokenJobs, TouchJob } from '../../domain/token-jobs';
import { parseDuration } from '../../domain/duration';
import {
  DEFAULT_QUEUE_PREFIX,
  JOB_NAMES,
  KEEP_COMPLETED,
  KEEP_FAILED,
  QUEUE_NAMES,
  RETRY,
  revokeAllJobId,
  toRevokeAllPayload,
  toTouchPayload,
  touchDeduplicationId,
  type RevokeAllPayload,
  type TouchPayload,
} from './jobs';
import { TouchCoalescer } from './touch-coalescer';

/** Options of {@link BullMQTokenJobs}. */
export interface BullMQTokenJobsOptions {
  /**
   * Either the caller's ioredis client (`Redis` or `Cluster`), used as it is and never closed — give
   * it `enableOfflineQueue: false` so an outage fails at once instead of queueing commands — or a
   * `redis://` URL / ioredis options, from which one client is created with
   * `enableOfflineQueue: false` and closed by {@link BullMQTokenJobs.close}.
   */
  connection: Redis | Cluster | string | RedisOptions;
  /** BullMQ key prefix, shared with the worker. Default `{rr}` (a Redis Cluster hash tag). */
  prefix?: string | undefined;
  /**
   * BullMQ's telemetry (for example `new BullMQOtel('refresh-rotation')` from `bullmq-otel`), so
   * each job is traced from the request that queued it through the worker that ran it. Job data
   * carries ids only (never a token), and the spans carry what BullMQ records of it.
   */
  telemetry?: Telemetry | undefined;
  /**
   * Touches of one session within this window cost one job, which carries the latest touch and
   * runs when the window has passed. `'60s'`-style string or milliseconds; default `'60s'`.
   */
  touchWindow?: string | number | undefined;
  /**
   * Before Redis, a short per-process fold: a session's touches within this interval after one
   * sent are sent as one (the latest) when it ends. `0` sends every touch to Redis. Default `'1s'`.
   */
  coalesceInterval?: string | number | undefined;
  /** Sessions the per-process fold tracks at most; beyond, touches go straight to Redis. Default 10,000. */
  maxCoalescedSessions?: number | undefined;
  /**
   * An enqueue that has not been acknowledged after this long rejects with
   * `StoreUnavailableError`, so a slow Redis never hangs a request. Default `'2s'`.
   */
  enqueueTimeout?: string | number | undefined;
  /** Called with connection and queue errors (which also reject the enqueue that met them). */
  onError?: ((error: Error) => void) | undefined;
}

/** Counters of a {@link BullMQTokenJobs} since it was created. */
export interface BullMQTokenJobsStats {
  revokeAllEnqueued: number;
  /** Revoke-alls that could not be enqueued (the service then revokes inline). */
  revokeAllFailed: number;
  /**
   * Touches superseded in this process by a later touch of the same session within
   * `coalesceInterval`, and so never sent. Once the producer is closed (or every interval has
   * ended), `touchesEnqueued + touchesCoalesced + touchesDropped` is the number of `touch` calls.
   */
  touchesCoalesced: number;
  /** Touches sent to and accepted by Redis (new jobs and touches folded into a pending job alike). */
  touchesEnqueued: number;
  /** Touches dropped because Redis could not be reached in time. */
  touchesDropped: number;
}

const DEFAULT_TOUCH_WINDOW_MS = 60_000;
const DEFAULT_ENQUEUE_TIMEOUT_MS = 2_000;
const DEFAULT_COALESCE_INTERVAL_MS = 1_000;
const DEFAULT_MAX_COALESCED_SESSIONS = 10_000;

/**
 * `TokenJobs` on BullMQ: the producer half of the worker (`workers/main.ts` consumes the jobs).
 *
 * - `revokeAll` adds a `revoke-all` job whose id is derived from (userId, requestedAt): enqueueing
 *   the same request twice adds one job.
 * - `touch` adds a `touch` job deduplicated per session: within `touchWindow`, later touches
 *   replace the pending job's payload (so it carries the latest time) instead of adding jobs. The
 *   job runs two windows after the last touch folded into it, so `lastUsedAt` lags by about two
 *   windows (2 min by default): it says when a session was last used, not a live feed. In front
 *   of Redis, a bounded per-process fold (`coalesceInterval`) sends a busy session's touches at
 *   most once per interval.
 * - Every method rejects with `StoreUnavailableError` when Redis cannot take the job within
 *   `enqueueTimeout`, so the caller can fall back (revoke inline, drop the touch). An enqueue that
 *   timed out may still land later; the jobs are idempotent, so the job then repeats harmlessly.
 */
export class BullMQTokenJobs implements TokenJobs {
  private readonly revokeAllQueue: Queue<RevokeAllPayload>;
  private readonly touchQueue: Queue<TouchPayload>;
  private readonly ownedClient: Redis | null;
  private readonly touchWindowMs: number;
  private readonly enqueueTimeoutMs: number;
  private readonly counters: BullMQTokenJobsStats = {
    revokeAllEnqueued: 0,
    revokeAllFailed: 0,
    touchesCoalesced: 0,
    touchesEnqueued: 0,
    touchesDropped: 0,
  };
  private readonly coalescer: TouchCoalescer | null;
  private closing: Promise<void> | undefined;
  private closed = false;

  /** Throws `OptionsError` for an invalid prefix, duration or bound (before opening anything). */
  constructor(options: BullMQTokenJobsOptions) {
    const prefix = options.prefix ?? DEFAULT_QUEUE_PREFIX;
    if (prefix.length === 0 || prefix.includes(':')) {
      throw new OptionsError(
        `prefix must be a non-empty string without ':' (e.g. {rr}); got ${JSON.stringify(prefix)}`,
      );
    }
    this.touchWindowMs = toMilliseconds(
      'touchWindow',
      options.touchWindow,
      DEFAULT_TOUCH_WINDOW_MS,
      1,
    );
    this.enqueueTimeoutMs = toMilliseconds(
      'enqueueTimeout',
      options.enqueueTimeout,
      DEFAULT_ENQUEUE_TIMEOUT_MS,
      1,
    );
    const coalesceMs = toMilliseconds(
      'coalesceInterval',
      options.coalesceInterval,
      DEFAULT_COALESCE_INTERVAL_MS,
      0,
    );
    const maxSessions = options.maxCoalescedSessions ?? DEFAULT_MAX_COALESCED_SESSIONS;
    if (!Number.isSafeInteger(maxSessions) || maxSessions < 1) {
      throw new OptionsError(
        `maxCoalescedSessions must be a positive integer; got ${String(maxSessions)}`,
      );
    }
    const onError = options.onError ?? (() => undefined);

    this.ownedClient = isClient(options.connection)
      ? null
      : createFailFastClient(options.connection);
    this.ownedClient?.on('error', onError);
    const connection = this.ownedClient ?? (options.connection as Redis | Cluster);
    const { telemetry } = options;
    this.revokeAllQueue = new Queue<RevokeAllPayload>(QUEUE_NAMES.revokeAll, {
      connection,
      prefix,
      telemetry,
    });
    this.touchQueue = new Queue<TouchPayload>(QUEUE_NAMES.touch, { connection, prefix, telemetry });
    this.revokeAllQueue.on('error', onError);
    this.touchQueue.on('error', onError);
    this.coalescer =
      coalesceMs === 0
        ? null
        : new TouchCoalescer(
            (job) => this.sendTouch(job),
            () => (this.counters.touchesCoalesced += 1),
            (error) => onError(error instanceof Error ? error : new Error(String(error))),
            coalesceMs,
            maxSessions,
          );
  }

  /** Enqueue a `revoke-all`; a duplicate of a job already queued (or done within a day) adds nothing. */
  async revokeAll(job: RevokeAllJob): Promise<void> {
    const payload = toRevokeAllPayload(job);
    try {
      await this.enqueue(
        this.revokeAllQueue.add(JOB_NAMES.revokeAll, payload, {
          jobId: revokeAllJobId(job),
          ...RETRY.revokeAll,
          removeOnComplete: KEEP_COMPLETED.revokeAll,
          removeOnFail: KEEP_FAILED.revokeAll,
        }),
      );
      this.counters.revokeAllEnqueued += 1;
    } catch (error) {
      this.counters.revokeAllFailed += 1;
      throw error;
    }
  }

  /**
   * Enqueue a `touch`, folded into the session's pending touch job when there is one. A touch
   * folded in this process resolves at once; its later send, if it fails, is counted in
   * `touchesDropped` and reported to `onError`.
   */
  async touch(job: TouchJob): Promise<void> {
    toTouchPayload(job);
    return this.coalescer ? this.coalescer.touch(job) : this.sendTouch(job);
  }

  private async sendTouch(job: TouchJob): Promise<void> {
    const payload = toTouchPayload(job);
    try {
      await this.enqueue(
        this.touchQueue.add(JOB_NAMES.touch, payload, {
          // Twice the window: the pending job must stay delayed (replaceable) until the
          // deduplication key expires, even if this add reaches Redis late (a backlog of commands).
          delay: 2 * this.touchWindowMs,
          deduplication: {
            id: touchDeduplicationId(payload.sessionId),
            ttl: this.touchWindowMs,
            replace: true,
          },
          ...RETRY.touch,
          removeOnComplete: KEEP_COMPLETED.touch,
          removeOnFail: KEEP_FAILED.touch,
        }),
      );
      this.counters.touchesEnqueued += 1;
    } catch (error) {
      this.counters.touchesDropped += 1;
      throw error;
    }
  }

  /** A copy of the counters. */
  stats(): BullMQTokenJobsStats {
    return { ...this.counters };
  }

  /** Close the queues (and the client this producer created, if any). Idempotent. */
  close(): Promise<void> {
    return (this.closing ??= this.doClose());
  }

  private async doClose(): Promise<void> {
    await this.coalescer?.flush();
    this.closed = true;
    await Promise.allSettled([this.revokeAllQueue.close(), this.touchQueue.close()]);
    if (this.ownedClient && this.ownedClient.status !== 'end') {
      await this.ownedClient.quit().catch(() => this.ownedClient?.disconnect());
    }
  }

  private async enqueue(adding: Promise<unknown>): Promise<void> {
    if (this.closed) throw new StoreUnavailableError('the job queue is closed');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new StoreUnavailableError(
              `the job queue did not answer within ${this.enqueueTimeoutMs} ms`,
            ),
          ),
        this.enqueueTimeoutMs,
      );
    });
    try {
      await Promise.race([adding, timeout]);
    } catch (error) {
      adding.catch(() => undefined);
      if (error instanceof StoreUnavailableError) throw error;
      throw new StoreUnavailableError('the job queue is unavailable', { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }
}

function isClient(connection: BullMQTokenJobsOptions['connection']): connection is Redis | Cluster {
  return (
    typeof connection === 'object' &&
    typeof (connection as { duplicate?: unknown }).duplicate === 'function'
  );
}

/** A client whose commands fail at once while disconnected, instead of waiting in an offline queue. */
function createFailFastClient(connection: string | RedisOptions): Redis {
  const failFast: RedisOptions = { enableOfflineQueue: false, maxRetriesPerRequest: 1 };
  return typeof connection === 'string'
    ? new Redis(connection, failFast)
    : new Redis({ ...connection, ...failFast });
}

function toMilliseconds(
  name: string,
  value: string | number | undefined,
  fallback: number,
  min: number,
): number {
  if (value === undefined) return fallback;
  const ms = parseDuration(value, name);
  if (ms < min)
    throw new OptionsError(`${name} must be at least ${min} ms; got ${JSON.stringify(value)}`);
  return ms;
}
