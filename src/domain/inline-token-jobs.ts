import type { RefreshTokenRepository } from './refresh-token-repository';
import type { RevokeAllJob, TokenJobs, TouchJob } from './token-jobs';

/**
 * `TokenJobs` without a queue: each job runs at once, in the caller's request, against the
 * repository. The default of `RotationService` when no `jobs` are given; fine for tests, the demo
 * and small deployments.
 */
export class InlineTokenJobs implements TokenJobs {
  constructor(private readonly repository: RefreshTokenRepository) {}

  /** Revokes the user's records created before `requestedAt`, now. */
  async revokeAll(job: RevokeAllJob): Promise<void> {
    await this.repository.revokeAllForUser(job.userId, job.reason, {
      issuedBefore: job.requestedAt,
      at: job.requestedAt,
    });
  }

  /** Moves the session's last-used time forward (never backwards), now. */
  async touch(job: TouchJob): Promise<void> {
    await this.repository.touchMany([{ sessionId: job.sessionId, at: job.at }]);
  }
}
