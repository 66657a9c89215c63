/**
 * Turns what the use cases did into audit events (`onAuditEvent`): each event built in one place,
 * a refused grant and its event made together, and the outcome of a refresh worked out once.
 */
import {
  InvalidDpopProofError,
  InvalidGrantError,
  InvalidRequestError,
  type InvalidGrantReason,
} from './domain/errors';
import type { Clock } from './domain/refresh-token';
import type { AuditEvent, RefreshOutcome } from './options';

const OUTCOME_OF_REASON: Readonly<Record<InvalidGrantReason, RefreshOutcome>> = {
  malformed: 'malformed',
  unknown_session: 'unknown_session',
  forged: 'forged',
  revoked: 'revoked',
  expired: 'expired',
  version: 'outdated',
  reused: 'reused',
};

/** How a refresh that threw ended (the metrics' `outcome` label). */
export function outcomeOf(error: unknown): RefreshOutcome {
  if (error instanceof InvalidGrantError) return OUTCOME_OF_REASON[error.reason];
  if (error instanceof InvalidRequestError) return 'invalid_request';
  if (error instanceof InvalidDpopProofError) return 'invalid_dpop_proof';
  return 'error';
}

/** Who an event is about, where known. */
export interface Subject {
  userId?: string | undefined;
  sessionId?: string | undefined;
}

/** The audit hook of one `RotationService`. */
export class AuditTrail {
  constructor(
    private readonly hook: ((event: AuditEvent) => void) | undefined,
    private readonly clock: Clock,
  ) {}

  /** Audit events are best-effort: a throwing hook must never break a login or a refresh. */
  emit(event: AuditEvent): void {
    try {
      this.hook?.(event);
    } catch {
      // ignored on purpose
    }
  }

  /** The `InvalidGrantError` for `reason`, after its `token.rejected` event. */
  reject(reason: InvalidGrantReason, who: Subject = {}): InvalidGrantError {
    this.emit({
      type: 'token.rejected',
      at: this.clock.now(),
      reason,
      userId: who.userId,
      sessionId: who.sessionId,
    });
    return new InvalidGrantError(reason);
  }

  /**
   * The `InvalidGrantError` (reason `forged`: to the client it is one) for a token with a valid
   * tag that `record`'s session never had, after its `secret.compromise_suspected` event. The
   * event names the key id and the session, never the token.
   */
  compromiseSuspected(
    presented: { keyId: number; generation: number },
    record: { userId: string; sessionId: string; generation: number },
  ): InvalidGrantError {
    this.emit({
      type: 'secret.compromise_suspected',
      at: this.clock.now(),
      keyId: presented.keyId,
      userId: record.userId,
      sessionId: record.sessionId,
      presentedGeneration: presented.generation,
      currentGeneration: record.generation,
    });
    return this.reject('forged', record);
  }

  /**
   * Runs one refresh and emits its `refresh.completed` event, whatever the result, with the time it
   * took in this process (not domain time: the injected clock may be a fake). `report` hears the
   * outcome first (the span's attribute).
   */
  async timeRefresh<T>(
    refresh: () => Promise<[T, 'rotated' | 'grace']>,
    report: (outcome: RefreshOutcome) => void = () => undefined,
  ): Promise<T> {
    const started = performance.now();
    let outcome: RefreshOutcome = 'error';
    try {
      const [result, kind] = await refresh();
      outcome = kind;
      return result;
    } catch (error) {
      outcome = outcomeOf(error);
      throw error;
    } finally {
      report(outcome);
      this.emit({
        type: 'refresh.completed',
        at: this.clock.now(),
        outcome,
        durationMs: performance.now() - started,
      });
    }
  }
}
