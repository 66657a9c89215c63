/**
 * The wire contract between the producer (the app) and the worker: queue names, job names,
 * payloads, job ids and job options. Payloads carry ids and ISO-8601 times only, never a token.
 */
import { createHash } from 'node:crypto';
import type { KeepJobs } from 'bullmq';
import { InvalidRequestError } from '../../domain/errors';
import type { RevokeAllJob, TouchJob } from '../../domain/token-jobs';

/** One queue per kind of job, so each has its own counts, concurrency and backlog. */
export const QUEUE_NAMES = Object.freeze({
  revokeAll: 'revoke-all',
  touch: 'touch',
  cleanup: 'cleanup',
} as const);

/** Job names (one per queue; equal to the queue's name). */
export const JOB_NAMES = QUEUE_NAMES;

/**
 * Default key prefix. The braces are a Redis Cluster hash tag: every key of every queue lands in
 * one slot, which BullMQ's multi-key scripts need.
 */
export const DEFAULT_QUEUE_PREFIX = '{rr}';

/** Id of the cleanup job scheduler; upserting it at every worker start is harmless. */
export const CLEANUP_SCHEDULER_ID = 'cleanup';

/** What a `revoke-all` job carries. */
export interface RevokeAllPayload {
  userId: string;
  reason: string;
  /** ISO-8601; only records created strictly before it are revoked. */
  requestedAt: string;
}

/** What a `touch` job carries. */
export interface TouchPayload {
  sessionId: string;
  /** ISO-8601 time of the request that used the session. */
  at: string;
}

/** What a `cleanup` job carries: nothing; the worker's settings decide. */
export type CleanupPayload = Record<string, never>;

const MAX_ID_LENGTH = 256;
const MAX_REASON_LENGTH = 200;

export function toRevokeAllPayload(job: RevokeAllJob): RevokeAllPayload {
  return {
    userId: checkId('userId', job.userId),
    reason: checkReason(job.reason),
    requestedAt: checkDate('requestedAt', job.requestedAt).toISOString(),
  };
}

export function toTouchPayload(job: TouchJob): TouchPayload {
  return {
    sessionId: checkId('sessionId', job.sessionId),
    at: checkDate('at', job.at).toISOString(),
  };
}

/** Parse a `revoke-all` payload. Throws `InvalidRequestError` (a permanent failure) when malformed. */
export function parseRevokeAllPayload(data: unknown): RevokeAllJob {
  const record = asRecord(data);
  return {
    userId: checkId('userId', record.userId),
    reason: checkReason(record.reason),
    requestedAt: parseIsoDate('requestedAt', record.requestedAt),
  };
}

/** Parse a `touch` payload. Throws `InvalidRequestError` (a permanent failure) when malformed. */
export function parseTouchPayload(data: unknown): TouchJob {
  const record = asRecord(data);
  return {
    sessionId: checkId('sessionId', record.sessionId),
    at: parseIsoDate('at', record.at),
  };
}

/**
 * Deterministic job id of a revoke-all: the same (userId, requestedAt) always maps to the same id,
 * so a duplicate enqueue (a retried request, two app instances) adds nothing. Hashed because
 * BullMQ ids may not contain `:` and user ids are free strings.
 */
export function revokeAllJobId(job: Pick<RevokeAllJob, 'userId' | 'requestedAt'>): string {
  const digest = createHash('sha256')
    .update(job.userId)
    .update('\0')
    .update(job.requestedAt.toISOString())
    .digest('hex')
    .slice(0, 40);
  return `revoke-all-${digest}`;
}

/** Deduplication id of a session's touches (one pending touch job per session and window). */
export function touchDeduplicationId(sessionId: string): string {
  return `touch-${sessionId}`;
}

/** Completed jobs kept for inspection: bounded by age and count so Redis never grows without bound. */
export const KEEP_COMPLETED: Readonly<Record<keyof typeof QUEUE_NAMES, KeepJobs>> = Object.freeze({
  // A day of completed revoke-alls keeps their ids, so a late duplicate enqueue is still a no-op.
  revokeAll: { age: 24 * 3600, count: 10_000 },
  touch: { age: 3600, count: 1_000 },
  cleanup: { age: 7 * 24 * 3600, count: 100 },
});

/** Failed jobs kept for diagnosis, bounded likewise. */
export const KEEP_FAILED: Readonly<Record<keyof typeof QUEUE_NAMES, KeepJobs>> = Object.freeze({
  revokeAll: { age: 30 * 24 * 3600, count: 10_000 },
  touch: { age: 24 * 3600, count: 1_000 },
  cleanup: { age: 7 * 24 * 3600, count: 100 },
});

/** Retry policy: exponential backoff with jitter, so many failing jobs do not retry in lockstep. */
export const RETRY = Object.freeze({
  revokeAll: { attempts: 12, backoff: { type: 'exponential', delay: 1_000, jitter: 0.5 } },
  touch: { attempts: 5, backoff: { type: 'exponential', delay: 1_000, jitter: 0.5 } },
  cleanup: { attempts: 3, backoff: { type: 'exponential', delay: 10_000, jitter: 0.5 } },
} as const);

function asRecord(data: unknown): Record<string, unknown> {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new InvalidRequestError('job payload must be an object');
  }
  return data as Record<string, unknown>;
}

function checkId(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ID_LENGTH) {
    throw new InvalidRequestError(
      `job payload ${field} must be a non-empty string of at most ${MAX_ID_LENGTH} characters`,
    );
  }
  return value;
}

function checkReason(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_REASON_LENGTH) {
    throw new InvalidRequestError(
      `job payload reason must be a non-empty string of at most ${MAX_REASON_LENGTH} characters`,
    );
  }
  return value;
}

function checkDate(field: string, value: unknown): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new InvalidRequestError(`job ${field} must be a valid Date`);
  }
  return value;
}

function parseIsoDate(field: string, value: unknown): Date {
  const date = typeof value === 'string' ? new Date(value) : null;
  if (date === null || Number.isNaN(date.getTime()) || date.toISOString() !== value) {
    throw new InvalidRequestError(
      `job payload ${field} must be an ISO-8601 time (Date#toISOString)`,
    );
  }
  return date;
}
