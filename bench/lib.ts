/**
 * Shared pieces of the benchmarks: statistics, bulk seeding of session records built exactly like
 * the service builds them, child processes (app, floor, worker, load) and their resident memory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Express } from 'express';
import type { Connection } from 'mongoose';
import { v7 as uuidv7 } from 'uuid';
import { hashToken } from 'refresh-rotation';
// Not public: the seeding writes records straight into the collection, so it mints their tokens
// with the codec itself (the one deep import bench/ makes; eslint.config.mjs names it).
import { TokenCodec } from '../src/domain/token-codec';

export const ROOT = join(__dirname, '..');
export const REFRESH_SECRET = 'bench-refresh-secret-0123456789abcdefghijklmnop';
export const ACCESS_SECRET = 'bench-access-secret-0123456789abcdefghijklmnopq';
export const codec = new TokenCodec([REFRESH_SECRET]);

const DAY = 86_400_000;

/** Median, min and max of a list of numbers (NaN-free). */
export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** A positive integer given as `--name=value` on the command line, else `fallback`. */
export function integerFlag(name: string, fallback: number): number {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  const value = arg ? Number(arg.slice(name.length + 3)) : fallback;
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`--${name} must be a positive integer`);
  return value;
}

export function spread(values: readonly number[]): Spread {
  const sorted = [...values].filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const mid = Math.floor(n / 2);
  const median =
    n % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { median, min: sorted[0] as number, max: sorted[n - 1] as number, n };
}

export function fmt(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

export function fmtSpread(s: Spread, digits = 0): string {
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;
}

/** A plain-text table with aligned columns. */
export function table(title: string, head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [
    `\n${title}`,
    line(head),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.map(line),
  ].join('\n');
}

/** One session as the load generator needs it. */
export interface SeededSession {
  sessionId: string;
  /** Its generation-0 token (tokens are random: kept, not recomputed). */
  token: string;
}

/**
 * Insert `count` session records straight into the collection, built like `RotationService.issue`
 * builds them (same fields, same token hash), in batches of `batch`. `expired` makes records that
 * expired a day ago (cleanup fodder). Returns the sessions whose tokens the caller may want.
 */
export async function seedSessions(
  connection: Connection,
  count: number,
  options: {
    collection?: string;
    expired?: boolean;
    keep?: number;
    batch?: number;
    usersPerSession?: number;
  } = {},
): Promise<SeededSession[]> {
  const collection = connection.db!.collection<{ _id: string }>(
    options.collection ?? 'refresh_tokens',
  );
  const keepEvery = options.keep ? Math.max(1, Math.floor(count / options.keep)) : 0;
  const kept: SeededSession[] = [];
  const batchSize = options.batch ?? 2_000;
  const now = Date.now();
  for (let start = 0; start < count; start += batchSize) {
    const docs = [];
    for (let i = start; i < Math.min(count, start + batchSize); i += 1) {
      const sessionId = randomBytes(16).toString('hex');
      const minted = codec.mint(sessionId, 0);
      const createdAt = new Date(options.expired ? now - 40 * DAY : now - (i % 1000) * 1000);
      docs.push({
        _id: sessionId,
        id: uuidv7(),
        userId: `user-${Math.floor(i / 2)}`,
        generation: 0,
        keyId: minted.keyId,
        tokenHash: minted.tokenHash,
        sealed: minted.sealed,
        tokenVersion: 0,
        globalVersionAtIssuance: 0,
        createdAt,
        rotatedAt: null,
        superseded: [],
        lastUsedAt: null,
        expiresAt: new Date(options.expired ? now - DAY : now + 30 * DAY),
        absoluteExpiresAt: new Date(options.expired ? now + 50 * DAY : now + 90 * DAY),
        revokedAt: null,
        revokedReason: null,
      });
      if (keepEvery && i % keepEvery === 0 && kept.length < (options.keep ?? 0))
        kept.push({ sessionId, token: minted.token });
    }
    await collection.insertMany(docs, { ordered: false });
  }
  return kept;
}

/** Collection of the tutorial rotation's tokens (bench/tutorial-server.ts). */
export const TUTORIAL_COLLECTION = 'tutorial_tokens';

/**
 * Insert `count` documents of the tutorial rotation (bench/tutorial-server.ts) straight into its
 * collection, with its unique index; returns the plaintext tokens of `keep` of them.
 */
export async function seedTutorialTokens(
  connection: Connection,
  count: number,
  keep: number,
  batch = 5_000,
): Promise<string[]> {
  const collection = connection.db!.collection(TUTORIAL_COLLECTION);
  await collection.createIndex({ tokenHash: 1 }, { unique: true });
  const keepEvery = Math.max(1, Math.floor(count / Math.max(1, keep)));
  const kept: string[] = [];
  const expiresAt = new Date(Date.now() + 30 * DAY);
  for (let start = 0; start < count; start += batch) {
    const docs = [];
    for (let i = start; i < Math.min(count, start + batch); i += 1) {
      const token = randomBytes(32).toString('base64url');
      docs.push({ tokenHash: hashToken(token), userId: `user-${Math.floor(i / 2)}`, expiresAt });
      if (i % keepEvery === 0 && kept.length < keep) kept.push(token);
    }
    await collection.insertMany(docs, { ordered: false });
  }
  return kept;
}

/** The current (generation 0) token of each seeded session. */
export function initialTokens(sessions: readonly SeededSession[]): string[] {
  return sessions.map((s) => s.token);
}

/** Resident set size of a process in MiB (Linux /proc), or NaN. */
export function rssMiB(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** CPU seconds (user + system) and parent pid of every process, from /proc. */
function processTable(): Map<number, { ppid: number; cpu: number }> {
  const ticks = 100; // USER_HZ on Linux
  const table = new Map<number, { ppid: number; cpu: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after "(comm)": state ppid … utime(12th) stime(13th).
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      table.set(Number(entry), {
        ppid: Number(fields[1]),
        cpu: (Number(fields[11]) + Number(fields[12])) / ticks,
      });
    } catch {
      // the process ended while we read
    }
  }
  return table;
}

/** CPU seconds of the whole machine (all cores, busy time only), from /proc/stat. */
function machineCpu(): number {
  const [user, nice, system, , , irq, softirq] = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]!
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return (user! + nice! + system! + irq! + softirq!) / 100;
}

/** CPU seconds spent by each named process tree (a root pid and its descendants) and the machine. */
export type CpuUse = Record<string, number> & { machine: number };

/**
 * Start measuring CPU use of process trees (e.g. `{ app: pid, PostgreSQL: postmasterPid }`);
 * the returned function gives the seconds each tree and the whole machine used since. Processes
 * that end in between are not counted (their time is in `machine` only).
 */
export function cpuMeter(roots: Record<string, number>): () => CpuUse {
  const names = new Map(Object.entries(roots).map(([name, pid]) => [pid, name]));
  const treeTimes = () => {
    const table = processTable();
    const rootOf = (pid: number): string | undefined => {
      for (let current = pid, hops = 0; current > 1 && hops < 64; hops += 1) {
        const name = names.get(current);
        if (name) return name;
        current = table.get(current)?.ppid ?? 0;
      }
      return undefined;
    };
    const totals = new Map<number, { name: string; cpu: number }>();
    for (const [pid, { cpu }] of table) {
      const name = rootOf(pid);
      if (name) totals.set(pid, { name, cpu });
    }
    return totals;
  };
  const before = treeTimes();
  const machineBefore = machineCpu();
  return () => {
    const after = treeTimes();
    const use: CpuUse = Object.assign(
      Object.fromEntries(Object.keys(roots).map((name) => [name, 0])),
      { machine: machineCpu() - machineBefore },
    );
    for (const [pid, { name, cpu }] of after) use[name]! += cpu - (before.get(pid)?.cpu ?? 0);
    return use;
  };
}

/** Samples a process's RSS every `ms` until stopped; returns the peak. */
export function sampleRss(pid: number | undefined, ms = 250): () => number {
  let peak = rssMiB(pid);
  const timer = setInterval(() => {
    const now = rssMiB(pid);
    if (now > peak || !Number.isFinite(peak)) peak = now;
  }, ms);
  // A section that fails before reading its peak must not keep the harness alive for ever.
  timer.unref();
  return () => {
    clearInterval(timer);
    return peak;
  };
}

/** A TypeScript entry point run by node with tsx, in its own process. */
export interface Child {
  process: ChildProcess;
  pid: number;
  output(): string;
  stop(): Promise<number | null>;
}

export function spawnTs(
  file: string,
  env: Record<string, string>,
  options: { nodeArgs?: string[]; args?: string[] } = {},
): Child {
  const child = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), '--import', 'tsx', join(ROOT, file), ...(options.args ?? [])],
    { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-4_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let stopping: Promise<number | null> | undefined;
  return {
    process: child,
    pid: child.pid ?? 0,
    output: () => tail,
    stop: () =>
      (stopping ??= new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
        const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
        child.once('exit', (code) => {
          clearTimeout(kill);
          resolve(code);
        });
        child.kill('SIGTERM');
      })),
  };
}

/** Wait until `GET url` answers 200 (or the child dies / time runs out). */
export async function waitHttp(url: string, child: Child, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.process.exitCode !== null)
      throw new Error(`process exited early:\n${child.output()}`);
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms:\n${child.output()}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `promise`'s value, or `fallback` if it takes longer than `ms` (the timer never outlives it). */
export async function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<F>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** CPU milliseconds per successful refresh, from CPU seconds over a run that answered `ok`. */
export function cpuMsPerRefresh(cpuSeconds: number, ok: number): number {
  return (cpuSeconds * 1000) / Math.max(1, ok);
}

/** A bench server's life: listen on $PORT; on SIGTERM or SIGINT stop listening, `close`, exit 0. */
export function serveUntilSignal(app: Express, close: () => Promise<unknown>): void {
  const server = app.listen(Number(process.env.PORT));
  const stop = () => {
    server.close();
    server.closeIdleConnections();
    void close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
