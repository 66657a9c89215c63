/**
 * `npm run bench` (quick, under 3 minutes) and `npm run bench:full` (`--full`). Starts its own
 * MongoDB-wire server and Redis (test/support/servers.ts), seeds sessions in bulk, runs the example
 * app (demo/server.ts: helmet, request logs, rate limit, router, Mongoose adapter, BullMQ
 * producer) and the floor harness (bench/floor-server.ts) as separate processes, and drives them
 * from a third process (bench/load.ts, autocannon on loopback). Prints tables and writes JSON to
 * bench/results/. Every ratio is taken between runs of the same iteration (interleaved), because
 * the machine is shared and absolute numbers drift.
 *
 * Flags: --full, --profile (also take a --cpu-prof of the app under refresh load, and run the `cpu`
 * section), --only=a,b (sections: refresh, layers, reject, cpu, origin, worker, authenticate),
 * --sizes=1000,100000, --backend=postgresql|sqlite.
 *
 * `layers` adds three targets at the first size: the library alone (bench/router-server.ts: the
 * token router on RotationService and the Mongoose adapter, no demo-app middleware), with
 * FerretDB's revocation guard on and off, and the rotation most tutorials write
 * (bench/tutorial-server.ts: a Mongoose model, find + delete + insert) on a collection of the same
 * size. The floor (bench/floor-server.ts) is one findOneAndUpdate plus the CPU work of a refresh.
 * Every run also records the CPU time each process tree used (app, database servers, load
 * generator, whole machine).
 *
 * Database: MONGODB_URI if set; else FerretDB v1.24.2 on a throwaway PostgreSQL cluster with GIN
 * lookup indexes added in PostgreSQL after each bulk seed (bench/postgres.ts, the default); or,
 * with --backend=sqlite, FerretDB on SQLite (test/support/servers.ts), which scans on every query.
 *
 * This file starts the servers, runs the sections in order and writes the results; the sections
 * live by topic in settings.ts, targets.ts, refresh.ts (+ refresh-tables.ts), in-memory.ts,
 * origin.ts, authenticate-cost.ts and worker-bench.ts (docs/benchmarks.md lists them).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { startMongo, startRedis } from '../test/support/servers';
import { runAuthenticateSection } from './authenticate-cost';
import { runInMemorySection } from './in-memory';
import { fmt } from './lib';
import { runOrigin, type OriginResult } from './origin';
import { startPostgresFerret, type BenchMongo } from './postgres';
import { refreshAtSize, type RefreshRow } from './refresh';
import { reportRefresh } from './refresh-tables';
import {
  BACKEND,
  CONFIG,
  FULL,
  ONLY,
  PARTIAL,
  PROFILE,
  RESULTS_DIR,
  STAMP,
  log,
  wants,
  work,
} from './settings';
import { load, startTarget } from './targets';
import { runWorkerBench, type WorkerResult } from './worker-bench';

/** Run one section; a failure is reported in the output and the JSON, and the next section runs. */
async function section(
  name: string,
  results: Record<string, unknown>,
  output: string[],
  body: () => Promise<void>,
): Promise<void> {
  try {
    await body();
  } catch (error) {
    log(`${name} section failed: ${(error as Error).stack}`);
    output.push(`\n${name} section FAILED: ${(error as Error).message.slice(0, 400)}`);
    results.errors = { ...(results.errors as object), [name]: String((error as Error).stack) };
  }
  // Keep what is measured so far, in case a later section hangs and the run is stopped.
  writeFileSync(PARTIAL, JSON.stringify({ ...results, text: output.join('\n') }, null, 2));
}

/** MONGODB_URI (a real MongoDB, e.g. docker compose) instead of the FerretDB stand-in. */
function externalMongo(): Promise<BenchMongo> | null {
  const uri = process.env.MONGODB_URI;
  if (!uri) return null;
  const url = uri.replace(/\/[^/]*$/, '').replace(/\/$/, '');
  return Promise.resolve({
    url,
    port: Number(new URL(url).port || 27017),
    description: `MONGODB_URI server (${url.replace(/\/\/[^@/]*@/, '//***@')})`,
    state: () => 'external',
    output: () => '',
    stop: async () => undefined,
  });
}

function machine() {
  return {
    date: new Date().toISOString(),
    nproc: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    loadavg: readFileSync('/proc/loadavg', 'utf8').trim(),
  };
}

async function main(): Promise<void> {
  const begun = performance.now();
  log(
    `${FULL ? 'full' : 'quick'} run; sizes ${CONFIG.sizes.join(', ')}; ${CONFIG.runs} runs × ${CONFIG.seconds} s per target and size`,
  );
  const [mongo, redis] = await Promise.all([
    externalMongo() ?? (BACKEND === 'postgresql' ? startPostgresFerret() : startMongo()),
    startRedis(),
  ]);
  log(`servers: ${mongo.description}; ${redis.description}`);
  const output: string[] = [];
  const results: Record<string, unknown> = {
    mode: FULL ? 'full' : 'quick',
    config: CONFIG,
    machine: machine(),
  };
  results.servers = { mongo: mongo.description, redis: redis.description };
  try {
    if (wants('refresh') || wants('reject')) {
      const rows: RefreshRow[] = [];
      for (const size of CONFIG.sizes) {
        const { row, reject, profile } = await refreshAtSize(
          mongo,
          redis,
          size,
          wants('reject') && size === CONFIG.sizes[0],
        );
        rows.push(row);
        if (reject) results.rejection = reject;
        if (profile) results.profile = profile;
      }
      results.refresh = rows;
      writeFileSync(PARTIAL, JSON.stringify(results, null, 2));
      reportRefresh(rows, results, output);
    }
    // The in-memory profile runs with --profile / --full (or --only=cpu): the quick run has no room.
    if (ONLY ? wants('cpu') : PROFILE) {
      await section('cpu', results, output, () => runInMemorySection(results, output));
    }
    if (wants('origin')) {
      await section('origin', results, output, async () => {
        const origin: OriginResult = await runOrigin(mongo, FULL, log);
        results.origin = origin;
        output.push(origin.table);
      });
    }
    // Not in the quick run (it must stay under 3 minutes): --full, or --only=authenticate.
    if (ONLY ? wants('authenticate') : FULL) {
      await section('authenticate', results, output, () =>
        runAuthenticateSection(mongo, redis, results, output),
      );
    }
    if (wants('worker')) {
      await section('worker', results, output, async () => {
        const worker: WorkerResult = await runWorkerBench({
          mongo,
          redis,
          full: FULL,
          log,
          load,
          startTarget,
        });
        results.worker = worker;
        output.push(...worker.tables);
      });
    }
  } catch (error) {
    output.push(`\nrefresh section FAILED: ${(error as Error).message}`);
    results.errors = { ...(results.errors as object), refresh: String((error as Error).stack) };
  } finally {
    await Promise.all([mongo.stop(), redis.stop()]);
    rmSync(work, { recursive: true, force: true });
  }
  results.durationSeconds = Math.round((performance.now() - begun) / 1000);
  const text = [
    `refresh-rotation benchmarks (${FULL ? 'full' : 'quick'}), ${new Date().toISOString()}`,
    `machine: ${cpus().length} cores (${cpus()[0]?.model}), ${fmt(totalmem() / 2 ** 30, 1)} GiB, Node ${process.version}; load avg at start ${(results.machine as { loadavg: string }).loadavg}`,
    `servers: ${mongo.description}; ${redis.description}. The machine is shared: compare ratios, not absolute numbers.`,
    ...output,
    `\ntotal ${results.durationSeconds} s`,
  ].join('\n');
  console.log(text);
  const file = join(RESULTS_DIR, `${FULL ? 'full' : 'quick'}-${STAMP}.json`);
  writeFileSync(file, JSON.stringify({ ...results, text }, null, 2));
  rmSync(PARTIAL, { force: true });
  console.log(`results written to ${file}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
