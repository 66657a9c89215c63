import type { TouchJob } from '../../domain/token-jobs';

/**
 * A short, bounded, per-process buffer in front of the touch queue. The first touch of a session
 * is sent at once; the session's later touches within `intervalMs` are folded into one, sent (with
 * the latest time) when the interval ends. An enqueue costs ~0.2 ms of CPU in BullMQ, a fold a map
 * lookup, so a busy session costs one enqueue per interval per process instead of one per request.
 *
 * Bounded: at most `maxSessions` sessions are tracked; beyond that touches are sent directly. A
 * crash loses at most one interval of folded touches (last-used is informational).
 *
 * Every touch is accounted for once: it is sent (directly, or as its session's latest when the
 * interval ends), or it is superseded by another touch of its session in the same interval, which
 * is what `onSuperseded` counts. A touch waiting for its interval to end is in neither yet.
 */
export class TouchCoalescer {
  private readonly sessions = new Map<string, { next: Date | null; timer: NodeJS.Timeout }>();

  constructor(
    private readonly send: (job: TouchJob) => Promise<void>,
    private readonly onSuperseded: () => void,
    private readonly onBackgroundError: (error: unknown) => void,
    private readonly intervalMs: number,
    private readonly maxSessions: number,
  ) {}

  /** Send now (the returned promise settles with the enqueue), or fold into the session's next send. */
  touch(job: TouchJob): Promise<void> {
    const tracked = this.sessions.get(job.sessionId);
    if (tracked) {
      // Of the pending touch and this one, one is superseded: only the later is ever sent.
      if (tracked.next !== null) this.onSuperseded();
      if (tracked.next === null || job.at.getTime() > tracked.next.getTime()) tracked.next = job.at;
      return Promise.resolve();
    }
    if (this.sessions.size < this.maxSessions) this.track(job.sessionId);
    return this.send(job);
  }

  /** Send every folded touch now and stop tracking; resolves when those sends settled. */
  async flush(): Promise<void> {
    const due: TouchJob[] = [];
    for (const [sessionId, tracked] of this.sessions) {
      clearTimeout(tracked.timer);
      if (tracked.next !== null) due.push({ sessionId, at: tracked.next });
    }
    this.sessions.clear();
    await Promise.allSettled(due.map((job) => this.send(job).catch(this.onBackgroundError)));
  }

  private track(sessionId: string): void {
    const timer = setTimeout(() => this.intervalEnded(sessionId), this.intervalMs);
    timer.unref();
    this.sessions.set(sessionId, { next: null, timer });
  }

  private intervalEnded(sessionId: string): void {
    const tracked = this.sessions.get(sessionId);
    this.sessions.delete(sessionId);
    if (!tracked || tracked.next === null) return;
    this.track(sessionId);
    this.send({ sessionId, at: tracked.next }).catch(this.onBackgroundError);
  }
}
