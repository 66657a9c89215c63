/**
 * A small generic reader of environment variables, shared by the worker's schema (`workers/env.ts`)
 * and the demo app's (`demo/env.ts`). It records every problem with the variable's name and
 * what to set, and throws them together; the values it checks are the library's own rules
 * (`parseDuration`). Only `workers/` and `demo/` read the environment: the library takes options.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { CronExpressionParser } from 'cron-parser';
// The options' own duration parser, so the variables take exactly the durations the options take.
import { OptionsError, parseDuration as parseLibraryDuration } from 'refresh-rotation';

/** The raw environment: `process.env` or a plain object in tests. */
export type RawEnv = Readonly<Record<string, string | undefined>>;

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export const LOG_LEVELS: readonly LogLevel[] = [
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
  'silent',
];

/** The environment is invalid; `problems` lists every variable at fault with what to set. */
export class EnvError extends OptionsError {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid environment (see .env.example):\n  - ${problems.join('\n  - ')}`);
  }
}

/**
 * Load `.env` from the working directory into `process.env` when the file exists (variables already
 * set win, as with `node --env-file`). Returns the file's path, or null when there is none.
 */
export function loadDotEnv(directory: string = process.cwd()): string | null {
  const path = resolve(directory, '.env');
  if (!existsSync(path)) return null;
  process.loadEnvFile(path);
  return path;
}

/**
 * Milliseconds of a duration such as `15m`, `30d`, `10s`, `250ms` or a bare number of
 * milliseconds (the library's `parseDuration`); null when the text is not one.
 */
export function parseDuration(text: string): number | null {
  const trimmed = text.trim();
  try {
    return parseLibraryDuration(/^\d+$/.test(trimmed) ? Number(trimmed) : trimmed, 'duration');
  } catch {
    return null;
  }
}

export function present(value: string | undefined): value is string {
  return value !== undefined && value.trim() !== '';
}

/** Reads variables, records every problem, and throws them together in `finish()`. */
export class EnvReader {
  private readonly problems: string[] = [];

  constructor(readonly env: RawEnv) {}

  problem(message: string): void {
    this.problems.push(message);
  }

  finish(): void {
    if (this.problems.length > 0) throw new EnvError(this.problems);
  }

  optionalString(name: string): string | undefined {
    const value = this.env[name];
    return present(value) ? value.trim() : undefined;
  }

  string(name: string, fallback: string): string {
    return this.optionalString(name) ?? fallback;
  }

  url(name: string, protocols: readonly string[]): string | undefined {
    const value = this.optionalString(name);
    if (value === undefined) return undefined;
    let protocol: string | undefined;
    try {
      protocol = new URL(value).protocol;
    } catch {
      protocol = undefined;
    }
    if (protocol === undefined || !protocols.includes(protocol)) {
      this.problem(
        `${name} must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}.`,
      );
    }
    return value;
  }

  duration(name: string, fallback: string, bounds: { min?: number; max?: number } = {}): number {
    const text = this.string(name, fallback);
    const value = parseDuration(text);
    if (value === null) {
      this.problem(
        `${name} must be a duration such as 250ms, 10s, 15m, 12h or 30d; got ${JSON.stringify(text)}.`,
      );
      return parseDuration(fallback) ?? 0;
    }
    if (bounds.min !== undefined && value < bounds.min) {
      this.problem(`${name} must be at least ${bounds.min} ms; got ${JSON.stringify(text)}.`);
    }
    if (bounds.max !== undefined && value > bounds.max) {
      this.problem(`${name} must be at most ${bounds.max} ms; got ${JSON.stringify(text)}.`);
    }
    return value;
  }

  optionalInteger(name: string, bounds: { min: number; max: number }): number | undefined {
    const text = this.optionalString(name);
    if (text === undefined) return undefined;
    const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(value) || value < bounds.min || value > bounds.max) {
      this.problem(
        `${name} must be an integer from ${bounds.min} to ${bounds.max}; got ${JSON.stringify(text)}.`,
      );
      return undefined;
    }
    return value;
  }

  integer(name: string, fallback: number, bounds: { min: number; max: number }): number {
    return this.optionalInteger(name, bounds) ?? fallback;
  }

  boolean(name: string, fallback: boolean): boolean {
    const text = this.optionalString(name)?.toLowerCase();
    if (text === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(text)) return true;
    if (['0', 'false', 'no', 'off'].includes(text)) return false;
    this.problem(`${name} must be true or false; got ${JSON.stringify(text)}.`);
    return fallback;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const text = this.optionalString(name);
    if (text === undefined) return fallback;
    const match = allowed.find((candidate) => candidate.toLowerCase() === text.toLowerCase());
    if (match === undefined) {
      this.problem(`${name} must be one of ${allowed.join(', ')}; got ${JSON.stringify(text)}.`);
      return fallback;
    }
    return match;
  }

  /**
   * A cron pattern as BullMQ's job schedulers read it (cron-parser: 5 or 6 fields, or a nickname
   * such as `@hourly`); the problem names the variable and cron-parser's reason.
   */
  cron(name: string, fallback: string): string {
    const text = this.string(name, fallback);
    try {
      CronExpressionParser.parse(text);
    } catch (error) {
      this.problem(
        `${name} must be a cron pattern such as "*/10 * * * *" or @hourly; got ${JSON.stringify(text)} (${error instanceof Error ? error.message : String(error)}).`,
      );
    }
    return text;
  }
}

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as Record<string, unknown>)) deepFreeze(child);
  }
  return value;
}
