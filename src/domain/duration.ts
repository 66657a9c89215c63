/**
 * Durations as the options take them: a number of milliseconds, or a string such as `'15m'`.
 * Pure: the rotation options, the BullMQ adapter's settings and the worker's environment all read
 * durations through {@link parseDuration}, so they accept the same strings.
 */
import { OptionsError } from './errors';

/** A duration: milliseconds, or a string such as `'500ms'`, `'10s'`, `'15m'`, `'12h'`, `'30d'`, `'2w'`. */
export type Duration = string | number;

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};
const DURATION_PATTERN = /^(-?\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/;
/** About 100 years: anything longer is a typo, and would overflow Date arithmetic soon enough. */
const MAX_DURATION_MS = 100 * 365 * 86_400_000;

/**
 * Milliseconds of a duration (`'15m'`, `'30d'`, `'500ms'` or a number of ms). Throws `OptionsError`
 * naming `name` for anything else, a negative value, or more than ~100 years.
 */
export function parseDuration(value: unknown, name: string): number {
  let msValue: number;
  if (typeof value === 'number') {
    msValue = value;
  } else if (typeof value === 'string') {
    const match = DURATION_PATTERN.exec(value.trim());
    if (!match) {
      throw new OptionsError(
        `${name} must be milliseconds or a string like '500ms', '10s', '15m', '12h', '30d', '2w'; got ${JSON.stringify(value)}`,
      );
    }
    msValue = Number(match[1]) * (UNIT_MS[match[2] as string] as number);
  } else {
    throw new OptionsError(
      `${name} must be a number of milliseconds or a string like '15m'; got ${typeof value}`,
    );
  }
  if (!Number.isFinite(msValue))
    throw new OptionsError(`${name} must be a finite duration; got ${String(value)}`);
  if (msValue < 0) throw new OptionsError(`${name} must not be negative; got ${String(value)}`);
  if (msValue > MAX_DURATION_MS)
    throw new OptionsError(`${name} must be at most 100 years; got ${String(value)}`);
  return Math.round(msValue);
}
