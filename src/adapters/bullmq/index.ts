/**
 * refresh-rotation/bullmq: the queue producer (`BullMQTokenJobs`), which the `RotationService`
 * takes as its `jobs`, and the names and payloads of the jobs the worker (`refresh-rotation/worker`)
 * consumes, for monitoring.
 */
export { BullMQTokenJobs } from './bullmq-token-jobs';
export type { BullMQTokenJobsOptions, BullMQTokenJobsStats } from './bullmq-token-jobs';
export { CLEANUP_SCHEDULER_ID, DEFAULT_QUEUE_PREFIX, JOB_NAMES, QUEUE_NAMES } from './jobs';
export type { CleanupPayload, RevokeAllPayload, TouchPayload } from './jobs';
