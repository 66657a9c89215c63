/**
 * A command run the way an operator runs it (`npm run …`, `node …`), in its own process group
 * (`detached: true`), so a test can signal the one process an orchestrator would signal, check that
 * the whole group is gone, and kill the group (npm, sh, node together) whatever happened.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { waitFor } from './wait-for';

export const ROOT = join(__dirname, '..', '..');

export interface GroupExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ProcessGroup {
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves when the leader has exited. */
  readonly exited: Promise<GroupExit>;
  /** Resolves with the leader's exit, or rejects after `timeoutMs` with the output. */
  exitWithin(timeoutMs: number): Promise<GroupExit>;
  /** Resolves when stdout or stderr matches, or rejects after `timeoutMs` or on exit. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Signal the leader only, as `docker stop` or systemd signal the main process. */
  signal(signal: NodeJS.Signals): void;
  /** True while any process of the group is alive. */
  groupAlive(): boolean;
  /** SIGKILL the whole group; safe when it is gone. */
  killGroup(): void;
}

/** Signal a whole process group; a group that is already gone is fine. */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined || pid <= 0) return;
  try {
    process.kill(-pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** Whether any process of the group is still alive. */
export function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Start `command args` in `ROOT` with `env` on top of PATH and HOME only. `exited` is the leader's
 * exit, not the group's (test/package/support.ts's `startBackground` waits for every process
 * holding its output): a signal test needs to see npm gone while its node child lives on.
 */
export function startGroup(
  command: string,
  args: readonly string[],
  env: Record<string, string>,
): ProcessGroup {
  const child = spawn(command, args, {
    cwd: ROOT,
    detached: true,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  let exit: GroupExit | null = null;
  const exited = new Promise<GroupExit>((resolve) =>
    child.once('exit', (code, signal) => resolve((exit = { code, signal }))),
  );
  const pid = child.pid ?? -1;
  const describe = () => `stdout:\n${out.slice(-3_000)}\nstderr:\n${err.slice(-3_000)}`;
  return {
    pid,
    stdout: () => out,
    stderr: () => err,
    exited,
    exitWithin: async (timeoutMs) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        return await Promise.race([
          exited,
          new Promise<never>((_resolve, reject) => {
            timer = setTimeout(
              () => reject(new Error(`still running after ${timeoutMs} ms\n${describe()}`)),
              timeoutMs,
            );
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
    },
    waitFor: (pattern, timeoutMs = 30_000) =>
      new Promise<void>((resolve, reject) => {
        const started = Date.now();
        const poll = setInterval(() => {
          if (pattern.test(out) || pattern.test(err)) {
            clearInterval(poll);
            resolve();
          } else if (exit || Date.now() - started > timeoutMs) {
            clearInterval(poll);
            reject(
              new Error(
                `${exit ? `exited (${JSON.stringify(exit)})` : `no match after ${timeoutMs} ms`} waiting for ${pattern}\n${describe()}`,
              ),
            );
          }
        }, 50);
      }),
    signal: (signal) => {
      if (!exit) child.kill(signal);
    },
    groupAlive: () => groupAlive(pid),
    killGroup: () => killGroup(pid, 'SIGKILL'),
  };
}

/** Waits until no process of `group` is alive and returns how long that took; rejects after `timeoutMs`. */
export async function groupGoneWithin(group: ProcessGroup, timeoutMs: number): Promise<number> {
  const started = Date.now();
  await waitFor(() => !group.groupAlive(), {
    what: `every process of group ${group.pid} to exit`,
    timeoutMs,
  });
  return Date.now() - started;
}
