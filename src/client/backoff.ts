/** Retry timing after a refresh that failed for a reason that keeps the session. */

/** First retry after this long; doubled per failure. */
export const FIRST_RETRY_MS = 1_000;

/**
 * Milliseconds to wait before retry number `failures` (1 for the first): exponential from
 * {@link FIRST_RETRY_MS}, capped at `maxMs`, spread over its upper half by `random` so tabs and
 * users do not retry in lockstep, and never sooner than the server's `Retry-After`.
 */
export function retryDelay(
  failures: number,
  maxMs: number,
  random: number,
  retryAfterMs?: number,
): number {
  const exponential = Math.min(maxMs, FIRST_RETRY_MS * 2 ** Math.max(0, failures - 1));
  const spread = exponential * (0.5 + random / 2);
  return Math.max(spread, retryAfterMs ?? 0);
}

/** `Retry-After` (delay-seconds or an HTTP date) as milliseconds from `now`; undefined if absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1_000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
