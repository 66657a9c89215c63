/**
 * refresh-rotation/bullmq: the queue producer (`BullMQTokenJobs`) and the job contract shared with
 * the worker process (`workers/`).
 */
export { BullMQTokenJobs } from './bullmq-token-jobs';
export type { BullMQTokenJobsOptions, BullMQTokenJobsStats } from './bullmq-token-jobs';
export {
  CLEANUP_SCHEDULER_ID,
  DEFAULT_QUEUE_PREFIX,
  JOB_NAMES,
  KEEP_COMPLETED,
  KEEP_FAILED,
  QUEUE_NAMES,
  RETRY,
  parseRevokeAllPayload,
  parseTouchPayload,
  revokeAllJobId,
  toRevokeAllPayload,
  toTouchPayload,
  touchDeduplicationId,
} from './jobs';
export type { CleanupPayload, RevokeAllPayload, TouchPayload } from './jobs';
