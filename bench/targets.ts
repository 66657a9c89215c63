/**
 * The HTTP targets a refresh is measured against (the demo app, the library alone with and without
 * FerretDB's revocation guard, the tutorial rotation, the floor), each in its own process, and the
 * load runs against them: one autocannon process per run (bench/load.ts), with the CPU each process
 * tree used during it.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mongoose, { type Connection } from 'mongoose';
import { freePort } from '../test/support/servers';
import {
  ACCESS_SECRET,
  REFRESH_SECRET,
  cpuMeter,
  cpuMsPerRefresh,
  spawnTs,
  waitHttp,
  type Child,
} from './lib';
import type { LoadResult } from './load';
import type { BenchMongo } from './postgres';
import { CONFIG, work } from './settings';

let fileCounter = 0;

export function appEnv(mongoUri: string, redisUrl: string, port: number): Record<string, string> {
  return {
    NODE_ENV: 'production',
    MONGODB_URI: mongoUri,
    REDIS_URL: redisUrl,
    ACCESS_TOKEN_SECRET: ACCESS_SECRET,
    REFRESH_TOKEN_SECRETS: REFRESH_SECRET,
    PORT: String(port),
    LOG_LEVEL: 'info',
    RATE_LIMIT_TOKEN_PER_MINUTE: '1000000',
    RATE_LIMIT_LOGIN_PER_MINUTE: '1000000',
    RATE_LIMIT_ACCOUNT_PER_HOUR: '1000000',
    QUEUE_PREFIX: '{rrbench}',
  };
}

/**
 * The refresh targets: the demo app (full stack), the library alone with FerretDB's revocation
 * guard on (what runs on FerretDB) and off (what runs on MongoDB), and the floor.
 */
export const TARGETS = {
  full: 'full stack (demo app)',
  library: 'library alone, guard on',
  unguarded: 'library alone, guard off',
  tutorial: 'tutorial rotation (find + delete + insert)',
  floor: 'floor',
} as const;
export type TargetName = keyof typeof TARGETS;

/** A running HTTP target. */
export interface Target {
  name: TargetName;
  url: string;
  child: Child;
}

export async function startTarget(
  name: TargetName,
  mongoUri: string,
  redisUrl: string,
  nodeArgs: string[] = [],
): Promise<Target> {
  const port = await freePort();
  const bare = { MONGODB_URI: mongoUri, PORT: String(port) };
  const child =
    name === 'full'
      ? spawnTs('demo/server.ts', appEnv(mongoUri, redisUrl, port), { nodeArgs })
      : name === 'floor'
        ? spawnTs('bench/floor-server.ts', bare, { nodeArgs })
        : name === 'tutorial'
          ? spawnTs('bench/tutorial-server.ts', bare, { nodeArgs })
          : spawnTs(
              'bench/router-server.ts',
              { ...bare, REVOCATION_GUARD: name === 'library' ? 'auto' : 'off' },
              { nodeArgs },
            );
  await waitHttp(`http://127.0.0.1:${port}/healthz`, child);
  return {
    name,
    url: `http://127.0.0.1:${port}${name === 'floor' || name === 'tutorial' ? '/token' : '/auth/token'}`,
    child,
  };
}

/** One autocannon run from a separate process. */
export async function load(
  url: string,
  mode: 'rotate' | 'fixed' | 'bearer',
  tokens: string[],
  seconds: number,
  connections: number,
): Promise<LoadResult> {
  const id = ++fileCounter;
  const tokensFile = join(work, `tokens-${id}.json`);
  const out = join(work, `out-${id}.json`);
  const configFile = join(work, `load-${id}.json`);
  writeFileSync(tokensFile, JSON.stringify(tokens));
  writeFileSync(
    configFile,
    JSON.stringify({ url, mode, tokensFile, durationSec: seconds, connections, out }),
  );
  const child = spawnTs('bench/load.ts', {}, { args: [configFile] });
  const code = await new Promise<number | null>((resolve) => child.process.once('exit', resolve));
  if (code !== 0) throw new Error(`load process failed (${code}):\n${child.output()}`);
  const result = JSON.parse(readFileSync(out, 'utf8')) as LoadResult;
  rmSync(tokensFile);
  rmSync(out);
  rmSync(configFile);
  return result;
}

/** CPU milliseconds per successful refresh, by process tree (app, database servers, load, machine). */
export type CpuPerRefresh = Record<string, number>;

/** A load run and the CPU each process used during it. */
export interface MeasuredLoad extends LoadResult {
  cpuMs: CpuPerRefresh;
}

/** One rotate-mode run against a target, with CPU accounting for it and the database's processes. */
export async function measuredLoad(
  mongo: BenchMongo,
  target: Target,
  pool: string[],
  seconds: number,
): Promise<MeasuredLoad> {
  const meter = cpuMeter({ app: target.child.pid, ...mongo.processes?.() });
  const result = await load(target.url, 'rotate', pool, seconds, CONFIG.connections);
  const used = meter();
  const cpuMs: CpuPerRefresh = {};
  for (const [name, cpuSeconds] of Object.entries(used))
    cpuMs[name] = cpuMsPerRefresh(cpuSeconds, result.ok);
  cpuMs.load = cpuMsPerRefresh(result.cpuSeconds, result.ok);
  return { ...result, cpuMs };
}

export async function openDb(
  mongo: BenchMongo,
  name: string,
): Promise<{ uri: string; connection: Connection }> {
  const uri = `${mongo.url}/${name}`;
  const connection = await mongoose.createConnection(uri).asPromise();
  return { uri, connection };
}
