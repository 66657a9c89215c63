/** What the processors share: the part of a job they read, and how a malformed payload fails. */
import { UnrecoverableError } from 'bullmq';
import { InvalidRequestError } from '../../../domain/errors';

/** The part of a BullMQ job a processor reads. */
export interface JobLike {
  data: unknown;
}

/**
 * Parse a payload; a malformed one is a permanent failure (`UnrecoverableError`: no retries).
 */
export function parseOrFail<T>(parse: (data: unknown) => T, data: unknown): T {
  try {
    return parse(data);
  } catch (error) {
    if (error instanceof InvalidRequestError) throw new UnrecoverableError(error.message);
    throw error;
  }
}
