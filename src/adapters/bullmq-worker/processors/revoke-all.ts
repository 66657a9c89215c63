/**
 * `revoke-all`: mark every record of a user created before the request revoked (one `updateMany`
 * in the Mongoose adapter). Idempotent: a retry, a duplicate or a late run revokes nothing more.
 */
import { parseRevokeAllPayload } from '../../bullmq/jobs';
import type { RefreshTokenRepository } from '../../../domain/refresh-token-repository';
import type { RevokeAllJob } from '../../../domain/token-jobs';
import { parseOrFail, type JobLike } from './job';

/** What a completed `revoke-all` job returns (stored by BullMQ as the job's result). */
export interface RevokeAllResult {
  /** Records this run revoked; 0 on a repeat. */
  revoked: number;
}

/**
 * The `revoke-all` processor. Repository failures reject (the job is retried with backoff); a bad
 * payload fails at once. The records get `revokedAt = requestedAt`, as when revoking inline.
 */
export function createRevokeAllProcessor(
  repository: RefreshTokenRepository,
): (job: JobLike) => Promise<RevokeAllResult> {
  return async function processRevokeAll(job) {
    const request: RevokeAllJob = parseOrFail(parseRevokeAllPayload, job.data);
    const revoked = await repository.revokeAllForUser(request.userId, request.reason, {
      issuedBefore: request.requestedAt,
      at: request.requestedAt,
    });
    return { revoked };
  };
}
