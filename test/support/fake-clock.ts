import type { Clock } from '../../src/domain/refresh-token';

/** The instant every fake clock starts at unless told otherwise. */
export const EPOCH = new Date('2030-01-01T00:00:00.000Z');

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of `'10s'`, `'15m'`, `'30d'`-style strings (tests only; the library has its own parser). */
export function ms(duration: number | string): number {
  if (typeof duration === 'number') return duration;
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(duration);
  const unit = match ? UNITS[match[2] as string] : undefined;
  if (!match || unit === undefined) throw new Error(`fake clock: bad duration ${duration}`);
  return Number(match[1]) * unit;
}

/** A clock that moves only when told: `advance('10s')`, `set(date)`. */
export class FakeClock implements Clock {
  private current: number;

  constructor(start: Date = EPOCH) {
    this.current = start.getTime();
  }

  now(): Date {
    return new Date(this.current);
  }

  /** Move forward by a duration (`'10s'` or milliseconds); returns the new now. */
  advance(duration: number | string): Date {
    this.current += ms(duration);
    return this.now();
  }

  set(at: Date): void {
    this.current = at.getTime();
  }
}

/**
 * Real time plus an offset the test moves forward: for tests where something outside the test
 * reads the time too (a worker, the database, a JWT's `exp`), so they all stay consistent.
 */
export class ShiftedClock implements Clock {
  private offsetMs = 0;

  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }

  advance(ms: number): void {
    this.offsetMs += ms;
  }
}
