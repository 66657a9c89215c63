/**
 * The one poller of the tests: wait for something that happens in the background (a worker's job,
 * a server coming back, a queue draining) and fail loudly when it does not.
 */

export interface WaitForOptions<T> {
  /** What is awaited, as the failure message should name it ("the worker to revoke alice's sessions"). */
  what: string;
  /** Give up after this long. Default 20 s. */
  timeoutMs?: number;
  /** Pause between two probes. Default 50 ms. */
  intervalMs?: number;
  /** When the observed value is the awaited one. Default: anything but `undefined`, `null` or `false`. */
  until?: (value: T) => boolean;
}

type Ready<T> = Exclude<T, undefined | null | false>;

function isReady(value: unknown): boolean {
  return value !== undefined && value !== null && value !== false;
}

function describe(value: unknown): string {
  try {
    const text = JSON.stringify(value);
    return text === undefined
      ? String(value)
      : text.length > 2_000
        ? `${text.slice(0, 2_000)}…`
        : text;
  } catch {
    return String(value);
  }
}

/**
 * Probes `condition` until its value is ready (see `until`), and returns that value. On timeout it
 * rejects with an error naming `what` and the last value observed; an error thrown by `condition`
 * rejects at once.
 */
export function waitFor<T>(
  condition: () => T | Promise<T>,
  options: WaitForOptions<T> & { until?: undefined },
): Promise<Ready<T>>;
export function waitFor<T>(
  condition: () => T | Promise<T>,
  options: WaitForOptions<T> & { until: (value: T) => boolean },
): Promise<T>;
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  { what, timeoutMs = 20_000, intervalMs = 50, until = isReady }: WaitForOptions<T>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (until(value)) return value;
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; last observed: ${describe(value)}`,
      );
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
