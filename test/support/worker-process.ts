/**
 * Runs `workers/main.ts` as a separate OS process, the way `npm run worker` does, for the worker's
 * integration tests: its JSON log lines are collected, and it can be stopped with SIGTERM or
 * killed with SIGKILL. Started as `node --import tsx workers/main.ts` (not `node_modules/.bin/tsx`,
 * whose CLI runs the script in a child process: SIGKILL would then kill the CLI and orphan the
 * worker).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

/** One parsed pino line. */
export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface WorkerProcess {
  readonly pid: number;
  /** Every JSON line logged so far, in order. */
  readonly logs: LogLine[];
  /** Everything on stderr, and stdout lines that were not JSON. */
  readonly output: () => string;
  /** Resolves with the first line (already logged or to come) that matches; rejects on exit or timeout. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves once the worker logged "worker ready"; with the health port when it has one. */
  ready(timeoutMs?: number): Promise<{ healthPort: number | null }>;
  /** Send a signal (SIGTERM for a graceful stop, SIGKILL for a crash). */
  kill(signal: 'SIGTERM' | 'SIGINT' | 'SIGKILL'): void;
  /** Resolves when the process has exited. */
  readonly exited: Promise<WorkerExit>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves on exit. Idempotent; safe after an exit. */
  stop(graceMs?: number): Promise<WorkerExit>;
}

/**
 * Start the worker with `env` on top of a minimal environment (PATH, HOME; not the test
 * process's own variables, so each test states what the worker sees).
 */
export function startWorkerProcess(env: Record<string, string>): WorkerProcess {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  let text = '';
  const listeners = new Set<() => void>();
  let buffered = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let newline = buffered.indexOf('\n');
    while (newline >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        text += `${line}\n`;
      }
      newline = buffered.indexOf('\n');
    }
    for (const listener of listeners) listener();
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
  });
  let exitInfo: WorkerExit | null = null;
  const exited = new Promise<WorkerExit>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      for (const listener of listeners) listener();
      resolve(exitInfo);
    });
  });

  function waitForLog(match: (line: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined = undefined;
      const check = () => {
        const found = logs.find(match);
        if (found) {
          finish();
          resolve(found);
        } else if (exitInfo) {
          finish();
          reject(
            new Error(
              `worker exited (${JSON.stringify(exitInfo)}) before the awaited log line:\n${describe()}`,
            ),
          );
        }
      };
      const finish = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      timer = setTimeout(() => {
        finish();
        reject(
          new Error(`worker did not log the awaited line within ${timeoutMs} ms:\n${describe()}`),
        );
      }, timeoutMs);
      listeners.add(check);
      check();
    });
  }

  function describe(): string {
    return [...logs.slice(-15).map((line) => JSON.stringify(line)), text.slice(-2_000)].join('\n');
  }

  let stopping: Promise<WorkerExit> | undefined;
  return {
    pid: child.pid ?? -1,
    logs,
    output: () => text,
    waitForLog,
    ready: async (timeoutMs = 30_000) => {
      const line = await waitForLog((l) => l.msg === 'worker ready', timeoutMs);
      return { healthPort: typeof line.healthPort === 'number' ? line.healthPort : null };
    },
    kill: (signal) => {
      if (!exitInfo) child.kill(signal);
    },
    exited,
    stop: (graceMs = 15_000) =>
      (stopping ??= (async () => {
        if (exitInfo) return exitInfo;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        try {
          return await exited;
        } finally {
          clearTimeout(timer);
        }
      })()),
  };
}

/** `base` (a mongodb:// URL) pointed at database `dbName`, with extra URI options. */
export function databaseUri(
  base: string,
  dbName: string,
  options: Record<string, string> = {},
): string {
  const url = new URL(base);
  url.pathname = `/${dbName}`;
  for (const [key, value] of Object.entries(options)) url.searchParams.set(key, value);
  return url.toString();
}

/** A fresh BullMQ prefix for one test: unique, with a Redis Cluster hash tag like the default `{rr}`. */
export function uniquePrefix(name: string): string {
  return `{${name}_${Math.random().toString(36).slice(2, 10)}}`;
}
