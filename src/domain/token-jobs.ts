/**
 * Work the service hands to the worker. Payloads carry ids and times, never tokens.
 * An implementation rejects when it cannot accept the job, so the caller can fall back.
 */

/** Revoke every session of a user that was created before `requestedAt`. */
export interface RevokeAllJob {
  userId: string;
  reason: string;
  /** Only records created before this are revoked, so a newer login survives a late job. */
  requestedAt: Date;
}

/** Record that a session was used at `at` (last-used, `$max` semantics). */
export interface TouchJob {
  sessionId: string;
  at: Date;
}

/**
 * The port for work off the request path: `InlineTokenJobs` does it at once, `BullMQTokenJobs`
 * enqueues it for the worker. Rejects when the job cannot be accepted, so the caller can fall back.
 */
export interface TokenJobs {
  /** Enqueue (or run) a revoke-all. Enqueueing the same job twice revokes once. */
  revokeAll(job: RevokeAllJob): Promise<void>;
  /** Enqueue (or run) a last-used update; may be deduplicated per session and window. */
  touch(job: TouchJob): Promise<void>;
}
