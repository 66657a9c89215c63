/**
 * The `cpu` section, no database in the way: what the demo app's middleware (helmet, request log,
 * rate limit) costs against the token router alone, both on the in-memory adapters; then the demo
 * app on the in-memory adapters under the V8 CPU profiler.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../test/support/servers';
import {
  ROOT,
  cpuMeter,
  cpuMsPerRefresh,
  fmt,
  fmtSpread,
  sampleRss,
  spawnTs,
  spread,
  table,
  waitHttp,
} from './lib';
import { analyseProfile } from './profile';
import { CONFIG, FULL, log, work } from './settings';
import { load } from './targets';

/** The demo app on the in-memory adapters under refresh load, with --cpu-prof. */
async function cpuProfileInMemory() {
  const dir = join(work, 'profile-memory');
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const tokensOut = join(work, 'memory-tokens.json');
  const child = spawnTs('bench/memory-app.ts', {
    PORT: String(port),
    SESSIONS: '10000',
    TOKENS_OUT: tokensOut,
    PROFILE_OUT: join(dir, 'app.cpuprofile'),
  });
  await waitHttp(`http://127.0.0.1:${port}/healthz`, child, 120_000);
  const rss = sampleRss(child.pid);
  const seconds = FULL ? 10 : 4;
  const result = await load(
    `http://127.0.0.1:${port}/auth/token`,
    'rotate',
    JSON.parse(readFileSync(tokensOut, 'utf8')) as string[],
    seconds,
    CONFIG.connections,
  );
  const rssMiB = rss();
  await child.stop();
  log(`in-memory app: ${fmt(result.ok / seconds)} refresh/s, p99 ${result.p99} ms`);
  return {
    seconds,
    rps: result.ok / seconds,
    p50: result.p50,
    p99: result.p99,
    rssMiB,
    profile: analyseProfile(dir, ROOT),
  };
}

/**
 * What the demo app's middleware (helmet, request log, rate limit) costs without a database:
 * the demo app and the token router alone, both on the in-memory adapters, no profiler,
 * alternated; CPU ms per refresh of each app process.
 */
async function middlewareCost() {
  const seconds = 4;
  const apps = await Promise.all(
    (['example', 'library'] as const).map(async (name) => {
      const port = await freePort();
      const tokensOut = join(work, `memory-${name}-tokens.json`);
      const child = spawnTs('bench/memory-app.ts', {
        PORT: String(port),
        SESSIONS: '5000',
        TOKENS_OUT: tokensOut,
        APP: name,
      });
      await waitHttp(`http://127.0.0.1:${port}/healthz`, child, 120_000);
      return {
        name,
        child,
        url: `http://127.0.0.1:${port}/auth/token`,
        pool: JSON.parse(readFileSync(tokensOut, 'utf8')) as string[],
        rps: [] as number[],
        cpuMs: [] as number[],
      };
    }),
  );
  try {
    for (const app of apps) app.pool = (await load(app.url, 'rotate', app.pool, 2, 8)).tokens!;
    for (let run = 0; run < CONFIG.runs; run += 1) {
      for (const app of run % 2 ? [...apps].reverse() : apps) {
        const meter = cpuMeter({ app: app.child.pid });
        const result = await load(app.url, 'rotate', app.pool, seconds, CONFIG.connections);
        const used = meter();
        app.pool = result.tokens!;
        app.rps.push(result.ok / seconds);
        app.cpuMs.push(cpuMsPerRefresh(used.app!, result.ok));
      }
    }
  } finally {
    await Promise.all(apps.map((app) => app.child.stop()));
  }
  const [example, library] = apps;
  return {
    seconds,
    example: { rps: spread(example!.rps), cpuMs: spread(example!.cpuMs) },
    library: { rps: spread(library!.rps), cpuMs: spread(library!.cpuMs) },
    rpsRatio: spread(example!.rps.map((rps, i) => rps / library!.rps[i]!)),
  };
}

/** Run the `cpu` section: both measurements, and their tables into `output`. */
export async function runInMemorySection(
  results: Record<string, unknown>,
  output: string[],
): Promise<void> {
  const middleware = await middlewareCost();
  results.middlewareInMemory = middleware;
  output.push(
    table(
      `No database: the demo app vs the token router alone, in-memory adapters, no profiler, ${CONFIG.runs} alternated runs of ${middleware.seconds} s; CPU ms per refresh of the app process`,
      ['app', 'refresh/s', 'app CPU ms per refresh', 'example ÷ library refresh/s'],
      [
        [
          'demo app (helmet, request log, rate limit)',
          fmtSpread(middleware.example.rps),
          fmtSpread(middleware.example.cpuMs, 3),
          fmtSpread(middleware.rpsRatio, 2),
        ],
        [
          'token router alone',
          fmtSpread(middleware.library.rps),
          fmtSpread(middleware.library.cpuMs, 3),
          '',
        ],
      ],
    ),
  );
  const cpu = await cpuProfileInMemory();
  results.cpuInMemory = cpu;
  output.push(
    table(
      `No database in the way: the demo app on the in-memory adapters, ${CONFIG.connections} connections, one ${cpu.seconds} s run under the V8 CPU profiler (profiling slows it)`,
      ['refresh/s', 'p50 ms', 'p99 ms', 'peak RSS MiB'],
      [[fmt(cpu.rps), fmt(cpu.p50), fmt(cpu.p99), fmt(cpu.rssMiB)]],
    ),
    table(
      `CPU profile of that run (${fmt(cpu.profile.totalMs)} ms sampled from listen to stop; start-up and seeding excluded): top frames by self time`,
      ['self %', 'function', 'where'],
      cpu.profile.top.map((f) => [fmt(f.selfPct, 1), f.functionName, f.where]),
    ),
    table(
      'Self time by origin',
      ['self %', 'origin'],
      cpu.profile.byOrigin.map((o) => [fmt(o.selfPct, 1), o.origin]),
    ),
  );
}
