/**
 * refresh-rotation/worker: the consumer side of the jobs `refresh-rotation/bullmq` produces.
 * `startTokenWorkers` runs everything on your connections; the processors and the cleanup
 * scheduler's pieces are exported for those who wire BullMQ themselves. The `refresh-rotation-worker`
 * bin runs `startTokenWorkers` from environment variables.
 *
 * ```ts
 * const connection = await mongoose.createConnection(process.env.MONGODB_URI!).asPromise();
 * const workers = await startTokenWorkers({ mongoose: connection, connection: process.env.REDIS_URL! });
 * process.once('SIGTERM', () => void workers.close().then(() => connection.close()));
 * ```
 */
export { startTokenWorkers, DEFAULT_CLEANUP } from './token-workers';
export type { TokenWorkersOptions, TokenWorkers } from './token-workers';
export type { HealthReport, QueueCounts } from './health-report';
export type { CloseReport } from './shutdown';
export type { CleanupSettings, JobFinishedEvent } from './queue-table';
export type { WorkerLogger, WorkerLogFn } from './logger';
export { createRevokeAllProcessor } from './processors/revoke-all';
export type { RevokeAllResult } from './processors/revoke-all';
export type { JobLike } from './processors/job';
export { createTouchProcessor } from './processors/touch';
export { TouchBatcher } from './processors/touch-batcher';
export type { TouchBatcherOptions, TouchBatcherStats } from './processors/touch-batcher';
export { createCleanupProcessor, runCleanup } from './processors/cleanup';
export type { CleanupOptions, CleanupResult } from './processors/cleanup';
export { upsertCleanupScheduler } from './cleanup-scheduler';
export { CLEANUP_SCHEDULER_ID, QUEUE_NAMES, JOB_NAMES } from '../bullmq/jobs';
