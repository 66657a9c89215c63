/**
 * `touch`: parse the job's payload (a bad one fails without retries) and hand the touch to the
 * {@link TouchBatcher}; the job completes once the batched write that carries it succeeded.
 */
import { parseTouchPayload } from '../../bullmq/jobs';
import { parseOrFail, type JobLike } from './job';
import type { TouchBatcher } from './touch-batcher';

/** The `touch` processor: parse (bad payload: no retries), then wait for the batched write. */
export function createTouchProcessor(batcher: TouchBatcher): (job: JobLike) => Promise<void> {
  return async function processTouch(job) {
    await batcher.add(parseOrFail(parseTouchPayload, job.data));
  };
}
