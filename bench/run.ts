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
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import mongoose, { type Connection } from 'mongoose';
import { MongooseRefreshTokenRepository } from 'refresh-rotation/mongoose';
import { freePort, startMongo, startRedis, type ServerHandle } from '../test/support/servers';
import { startPostgresFerret, type BenchMongo } from './postgres';
import {
  ACCESS_SECRET,
  REFRESH_SECRET,
  ROOT,
  codec,
  cpuMeter,
  cpuMsPerRefresh,
  fmt,
  fmtSpread,
  initialTokens,
  sampleRss,
  seedSessions,
  seedTutorialTokens,
  TUTORIAL_COLLECTION,
  spawnTs,
  spread,
  table,
  waitHttp,
  type Child,
  type Spread,
} from './lib';
import type { LoadResult } from './load';
import { runOrigin, type OriginResult } from './origin';
import { analyseProfile, type ProfileReading } from './profile';
import { runWorkerBench, type WorkerResult } from './worker-bench';

const FULL = process.argv.includes('--full');
const PROFILE = process.argv.includes('--profile') || FULL;
const ONLY = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
const wants = (section: string) => !ONLY || ONLY.includes(section);

const SIZES = process.argv
  .find((a) => a.startsWith('--sizes='))
  ?.slice('--sizes='.length)
  .split(',')
  .map(Number);
const BACKEND =
  process.argv.find((a) => a.startsWith('--backend='))?.slice('--backend='.length) ?? 'postgresql';
if (BACKEND !== 'postgresql' && BACKEND !== 'sqlite')
  throw new Error(`--backend=${BACKEND}: expected postgresql or sqlite`);
// FerretDB v1 on SQLite scans the whole collection on every query (see docs/benchmarks.md), so the
// quick run stays at 1k and 10k sessions there. The quick run must stay under 3 minutes on a
// loaded 2-core machine: 50,000 sessions (seeded in ~12 s), not 100,000 (~20 s); the full run
// does 1,000 / 100,000 / 1,000,000.
const CONFIG = FULL
  ? {
      sizes: SIZES ?? [1_000, 100_000, 1_000_000],
      runs: 5,
      seconds: 8,
      warmSeconds: 2,
      connections: 8,
      pool: 20_000,
      rejectSeconds: 4,
      rejectRuns: 5,
    }
  : {
      sizes:
        SIZES ??
        (BACKEND === 'sqlite' && !process.env.MONGODB_URI ? [1_000, 10_000] : [1_000, 50_000]),
      runs: 3,
      seconds: 2,
      warmSeconds: 1,
      connections: 8,
      pool: 10_000,
      rejectSeconds: 1.5,
      rejectRuns: 2,
    };

const work = mkdtempSync(join(tmpdir(), 'rr-bench-'));
const RESULTS_DIR = join(ROOT, 'bench', 'results');
const STAMP = new Date().toISOString().replace(/[:.]/g, '-');
const PARTIAL = join(RESULTS_DIR, `${FULL ? 'full' : 'quick'}-${STAMP}.partial.json`);
mkdirSync(RESULTS_DIR, { recursive: true });
let fileCounter = 0;

function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

function appEnv(mongoUri: string, redisUrl: string, port: number): Record<string, string> {
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
const TARGETS = {
  full: 'full stack (demo app)',
  library: 'library alone, guard on',
  unguarded: 'library alone, guard off',
  tutorial: 'tutorial rotation (find + delete + insert)',
  floor: 'floor',
} as const;
type TargetName = keyof typeof TARGETS;

/** A running HTTP target. */
interface Target {
  name: TargetName;
  url: string;
  child: Child;
}

async function startTarget(
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
async function load(
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
type CpuPerRefresh = Record<string, number>;

/** A load run and the CPU each process used during it. */
interface MeasuredLoad extends LoadResult {
  cpuMs: CpuPerRefresh;
}

/** One rotate-mode run against a target, with CPU accounting for it and the database's processes. */
async function measuredLoad(
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

interface TargetStats {
  rps: Spread;
  p50: Spread;
  p99: Spread;
  failed: number;
  /** CPU ms per refresh by process tree: app, FerretDB, PostgreSQL, load, machine. */
  cpuMs: Record<string, Spread>;
}

interface LayerRow {
  name: TargetName;
  stats: TargetStats;
  /** This target's refresh/s ÷ the floor's, per iteration. */
  rpsToFloor: Spread;
  /** This target's refresh/s ÷ the tutorial rotation's, per iteration. */
  rpsToTutorial: Spread;
}

interface RefreshRow {
  size: number;
  seedSeconds: number;
  indexSeconds: number;
  full: TargetStats;
  floor: TargetStats;
  /** All targets at this size, when the `layers` section ran here. */
  layers?: LayerRow[];
  /** full / floor, per iteration. */
  rpsRatio: Spread;
  p50Ratio: Spread;
  p99Ratio: Spread;
  appRssMiB: number;
  floorRssMiB: number;
}

interface RejectRow {
  kind: string;
  rps: Spread;
  p99: Spread;
  /** rejection throughput / valid refresh throughput, per iteration. */
  ratio: Spread;
}

async function openDb(
  mongo: BenchMongo,
  name: string,
): Promise<{ uri: string; connection: Connection }> {
  const uri = `${mongo.url}/${name}`;
  const connection = await mongoose.createConnection(uri).asPromise();
  return { uri, connection };
}

async function refreshAtSize(
  mongo: BenchMongo,
  redis: ServerHandle,
  size: number,
  withRejection: boolean,
): Promise<{ row: RefreshRow; reject: RejectRow[] | null; profile: ProfileReading | null }> {
  const layered = wants('layers') && size === CONFIG.sizes[0];
  const names: TargetName[] = layered
    ? ['full', 'library', 'unguarded', 'tutorial', 'floor']
    : ['full', 'floor'];
  const { uri, connection } = await openDb(mongo, `bench_${size}`);
  await connection.db!.dropDatabase();
  await new MongooseRefreshTokenRepository(connection).ensureIndexes();
  const started = performance.now();
  // Disjoint pools (one per target) spread over the whole collection.
  const sessions = await seedSessions(connection, size, {
    keep: Math.min(size, CONFIG.pool * names.length),
    batch: 5_000,
  });
  const seedSeconds = (performance.now() - started) / 1000;
  // The tutorial rotation gets a collection of the same size on the same server.
  const tutorialTokens = layered
    ? await seedTutorialTokens(connection, size, Math.min(size, CONFIG.pool))
    : [];
  const indexStarted = performance.now();
  mongo.addLookupIndexes?.(`bench_${size}`, 'refresh_tokens');
  if (layered) mongo.addLookupIndexes?.(`bench_${size}`, TUTORIAL_COLLECTION);
  const indexSeconds = (performance.now() - indexStarted) / 1000;
  log(
    `seeded ${fmt(size)} sessions in ${fmt(seedSeconds, 1)} s${mongo.addLookupIndexes ? `, GIN lookup indexes in ${fmt(indexSeconds, 1)} s` : ''}`,
  );
  // Interleaved, so both pools sit at the same places in the collection's natural order (a server
  // that scans stops at the first match: a pool made of the first half would be favoured).
  const pools = Object.fromEntries(
    names.map((name, n) => [
      name,
      initialTokens(sessions.filter((_s, i) => i % names.length === n)),
    ]),
  ) as Record<TargetName, string[]>;
  if (layered) pools.tutorial = tutorialTokens;
  // Started side by side (each takes seconds to compile and connect); measured one at a time.
  const launched = await Promise.allSettled(names.map((name) => startTarget(name, uri, redis.url)));
  const targets = launched.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const stopAll = () => Promise.all(targets.map((target) => target.child.stop()));
  const failed = launched.find((s) => s.status === 'rejected');
  if (failed) {
    await stopAll();
    throw (failed as PromiseRejectedResult).reason;
  }
  const [full, floor] = [targets[0]!, targets[targets.length - 1]!];
  const rss = { full: sampleRss(full.child.pid), floor: sampleRss(floor.child.pid) };
  const samples = Object.fromEntries(names.map((name) => [name, []])) as unknown as Record<
    TargetName,
    MeasuredLoad[]
  >;
  try {
    for (const target of targets) {
      const warm = await load(
        target.url,
        'rotate',
        pools[target.name],
        CONFIG.warmSeconds,
        CONFIG.connections,
      );
      pools[target.name] = warm.tokens!;
    }
    for (let run = 0; run < CONFIG.runs; run += 1) {
      const order = run % 2 ? [...targets].reverse() : targets;
      for (const target of order) {
        const result = await measuredLoad(mongo, target, pools[target.name], CONFIG.seconds);
        pools[target.name] = result.tokens!;
        samples[target.name].push(result);
        log(
          `size ${fmt(size)} run ${run + 1} ${target.name}: ${fmt(result.ok / CONFIG.seconds)} refresh/s, p50 ${result.p50} ms, p99 ${result.p99} ms, non-2xx ${result.non2xx}, app CPU ${fmt(result.cpuMs.app!, 2)} ms/refresh`,
        );
      }
    }
    let reject: RejectRow[] | null = null;
    if (withRejection) reject = await rejection(full, connection, pools.full);
    const peak = { full: rss.full(), floor: rss.floor() };
    let profile: ProfileReading | null = null;
    if (PROFILE && size === CONFIG.sizes[0]) {
      await full.child.stop();
      profile = await profileApp(uri, redis.url, pools.full);
    }
    const per = (name: TargetName): TargetStats => ({
      rps: spread(samples[name].map((r) => r.ok / CONFIG.seconds)),
      p50: spread(samples[name].map((r) => r.p50 ?? NaN)),
      p99: spread(samples[name].map((r) => r.p99 ?? NaN)),
      failed: samples[name].reduce((sum, r) => sum + r.non2xx + r.errors, 0),
      cpuMs: Object.fromEntries(
        Object.keys(samples[name][0]?.cpuMs ?? {}).map((group) => [
          group,
          spread(samples[name].map((r) => r.cpuMs[group] ?? NaN)),
        ]),
      ),
    });
    const ratio = (
      pick: (r: LoadResult) => number,
      name: TargetName = 'full',
      base: TargetName = 'floor',
    ) =>
      // JSON turns a NaN latency (nothing completed) into null: keep it NaN, not 0.
      spread(samples[name].map((r, i) => (pick(r) ?? NaN) / (pick(samples[base][i]!) ?? NaN)));
    return {
      row: {
        size,
        seedSeconds,
        indexSeconds,
        full: per('full'),
        floor: per('floor'),
        rpsRatio: ratio((r) => r.ok),
        p50Ratio: ratio((r) => r.p50),
        p99Ratio: ratio((r) => r.p99),
        appRssMiB: peak.full,
        floorRssMiB: peak.floor,
        ...(layered
          ? {
              layers: names.map((name) => ({
                name,
                stats: per(name),
                rpsToFloor: ratio((r) => r.ok, name),
                rpsToTutorial: ratio((r) => r.ok, name, 'tutorial'),
              })),
            }
          : {}),
      },
      reject,
      profile,
    };
  } finally {
    await stopAll();
    await connection.db!.dropDatabase().catch(() => undefined);
    await connection.close();
  }
}

/** Forged (right session, wrong tag), unknown session (minted with our secret), and garbage, against valid refreshes. */
async function rejection(
  full: Target,
  connection: Connection,
  pool: string[],
): Promise<RejectRow[]> {
  const sample = pool.slice(0, 1_000);
  const forged = sample.map((token) => {
    const body = Buffer.from(token.slice(3), 'base64url');
    body.writeUInt8(body.readUInt8(body.length - 1) ^ 0x01, body.length - 1);
    return `rt_${body.toString('base64url')}`;
  });
  const unknown = sample.map(() =>
    codec.encode({
      sessionId: randomBytes(16).toString('hex'),
      generation: 0,
      salt: randomBytes(32).toString('hex'),
    }),
  );
  const garbage = sample.map((_t, i) => `not-a-token-${i}`.padEnd(80, 'x'));
  void connection;
  const kinds: Array<[string, string[]]> = [
    ['forged (valid format, wrong tag)', forged],
    ['unknown session (valid tag)', unknown],
    ['garbage', garbage],
  ];
  const valid: number[] = [];
  const byKind = new Map<string, LoadResult[]>(kinds.map(([k]) => [k, []]));
  let current = pool;
  for (let run = 0; run < CONFIG.rejectRuns; run += 1) {
    const ok = await load(full.url, 'rotate', current, CONFIG.rejectSeconds, CONFIG.connections);
    current = ok.tokens!;
    valid.push(ok.ok / CONFIG.rejectSeconds);
    for (const [kind, tokens] of kinds) {
      const result = await load(
        full.url,
        'fixed',
        tokens,
        CONFIG.rejectSeconds,
        CONFIG.connections,
      );
      if (result.ok > 0) throw new Error(`${kind}: ${result.ok} bad tokens were accepted`);
      byKind.get(kind)!.push(result);
    }
    log(
      `rejection run ${run + 1}: valid ${fmt(valid[run]!)} /s, ${kinds.map(([k]) => `${k.split(' ')[0]} ${fmt(byKind.get(k)![run]!.rps)} /s`).join(', ')}`,
    );
  }
  pool.splice(0, pool.length, ...current);
  return [
    {
      kind: 'valid refresh (200)',
      rps: spread(valid),
      p99: spread([]),
      ratio: spread(valid.map(() => 1)),
    },
    ...kinds.map(([kind]) => {
      const results = byKind.get(kind)!;
      return {
        kind: `${kind} (400)`,
        rps: spread(results.map((r) => r.rps)),
        p99: spread(results.map((r) => r.p99)),
        ratio: spread(results.map((r, i) => r.rps / valid[i]!)),
      };
    }),
  ];
}

/** `node --cpu-prof` on the app process under refresh load; the top frames by self time. */
async function profileApp(uri: string, redisUrl: string, pool: string[]): Promise<ProfileReading> {
  const dir = join(work, 'profile');
  mkdirSync(dir, { recursive: true });
  const app = await startTarget('full', uri, redisUrl, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
  const result = await load(app.url, 'rotate', pool, FULL ? 10 : 5, CONFIG.connections);
  pool.splice(0, pool.length, ...result.tokens!);
  await app.child.stop();
  log(`profiled ${fmt(result.ok)} refreshes`);
  return analyseProfile(dir, ROOT);
}

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

/** The guards of bench/authenticate-server.ts, in the order they are reported. */
const GUARDS = {
  plain: 'authenticate (signature and expiry only)',
  versions: 'checkRevocation: true (versions, with bus)',
  sessions: 'checkRevocation: { sessions: true }, with bus',
  'sessions-nobus': 'checkRevocation: { sessions: true }, no bus (one instance)',
  'sessions-uncached': '{ sessions: true }, no caches (a record read per request)',
} as const;
const REFRESH_VARIANTS = {
  nobus: 'refresh, no bus',
  bus: 'refresh, with bus (sync PING beside the record read)',
} as const;

interface GuardRow {
  name: string;
  label: string;
  rps: Spread;
  p99: Spread;
  /** rps ÷ the baseline's rps in the same iteration. */
  ratio: Spread;
  /** App-process CPU microseconds per answered request. */
  appCpuUs: Spread;
  /** Database processes' CPU microseconds per answered request. */
  dbCpuUs: Spread;
  failed: number;
}

/**
 * What the `checkRevocation` options cost per request (issue 14, item 6), and what the revocation
 * bus adds to a refresh: every variant in one server process, alternated, `CONFIG.runs` runs of
 * `CONFIG.seconds`; ratios against `/plain` (and refresh without the bus) in the same iteration.
 */
async function authenticateCost(mongo: BenchMongo, redis: ServerHandle) {
  const sessions = 2_000;
  const { uri, connection } = await openDb(mongo, 'bench_authenticate');
  await connection.db!.dropDatabase();
  const port = await freePort();
  const tokensOut = join(work, 'authenticate-tokens.json');
  const child = spawnTs('bench/authenticate-server.ts', {
    MONGODB_URI: uri,
    REDIS_URL: redis.url,
    PORT: String(port),
    SESSIONS: String(sessions),
    TOKENS_OUT: tokensOut,
  });
  try {
    await waitHttp(`http://127.0.0.1:${port}/healthz`, child, 180_000);
    const tokens = JSON.parse(readFileSync(tokensOut, 'utf8')) as {
      access: string[];
      refresh: string[];
    };
    const half = tokens.refresh.length / 2;
    const pools: Record<keyof typeof REFRESH_VARIANTS, string[]> = {
      nobus: tokens.refresh.slice(0, half),
      bus: tokens.refresh.slice(half),
    };
    const base = `http://127.0.0.1:${port}`;
    const guardNames = Object.keys(GUARDS) as Array<keyof typeof GUARDS>;
    const refreshNames = Object.keys(REFRESH_VARIANTS) as Array<keyof typeof REFRESH_VARIANTS>;
    for (const name of guardNames)
      await load(`${base}/${name}`, 'bearer', tokens.access, 1, CONFIG.connections);
    for (const name of refreshNames)
      pools[name] = (await load(`${base}/${name}/token`, 'rotate', pools[name], 1, 8)).tokens!;
    const samples = new Map<string, MeasuredLoad[]>();
    const measure = async (
      name: string,
      url: string,
      mode: 'bearer' | 'rotate',
      pool: string[],
    ) => {
      const meter = cpuMeter({ app: child.pid, ...mongo.processes?.() });
      const result = await load(url, mode, pool, CONFIG.seconds, CONFIG.connections);
      const used = meter();
      const cpuMs: CpuPerRefresh = {};
      for (const [group, cpuSeconds] of Object.entries(used))
        cpuMs[group] = cpuMsPerRefresh(cpuSeconds, result.ok);
      samples.set(name, [...(samples.get(name) ?? []), { ...result, cpuMs }]);
      return result;
    };
    for (let run = 0; run < CONFIG.runs; run += 1) {
      const guards = run % 2 ? [...guardNames].reverse() : guardNames;
      for (const name of guards) {
        const result = await measure(name, `${base}/${name}`, 'bearer', tokens.access);
        log(
          `authenticate run ${run + 1} ${name}: ${fmt(result.ok / CONFIG.seconds)} req/s, p99 ${result.p99} ms, non-2xx ${result.non2xx}`,
        );
      }
      const refreshes = run % 2 ? [...refreshNames].reverse() : refreshNames;
      for (const name of refreshes) {
        const result = await measure(name, `${base}/${name}/token`, 'rotate', pools[name]);
        pools[name] = result.tokens!;
        log(
          `authenticate run ${run + 1} refresh ${name}: ${fmt(result.ok / CONFIG.seconds)} refresh/s, p99 ${result.p99} ms, non-2xx ${result.non2xx}`,
        );
      }
    }
    const dbGroups = Object.keys(mongo.processes?.() ?? {});
    const row = (name: string, label: string, baseline: string): GuardRow => {
      const runs = samples.get(name)!;
      const baseRuns = samples.get(baseline)!;
      return {
        name,
        label,
        rps: spread(runs.map((r) => r.ok / CONFIG.seconds)),
        p99: spread(runs.map((r) => r.p99 ?? NaN)),
        ratio: spread(runs.map((r, i) => r.ok / baseRuns[i]!.ok)),
        appCpuUs: spread(runs.map((r) => (r.cpuMs.app ?? NaN) * 1000)),
        dbCpuUs: spread(
          runs.map((r) => dbGroups.reduce((sum, group) => sum + (r.cpuMs[group] ?? 0), 0) * 1000),
        ),
        failed: runs.reduce((sum, r) => sum + r.non2xx + r.errors, 0),
      };
    };
    return {
      sessions,
      dbGroups,
      guards: guardNames.map((name) => row(name, GUARDS[name], 'plain')),
      refresh: refreshNames.map((name) => row(name, REFRESH_VARIANTS[name], 'nobus')),
    };
  } finally {
    await child.stop();
    await connection.db!.dropDatabase().catch(() => undefined);
    await connection.close();
  }
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
      output.push(
        table(
          `Refresh through the full stack (demo app POST /auth/token) vs the floor, ${CONFIG.connections} connections; median (min–max) of ${CONFIG.runs} runs of ${CONFIG.seconds} s`,
          [
            'stored sessions',
            'full refresh/s',
            'floor refresh/s',
            'full/floor rps',
            'full p50 ms',
            'floor p50 ms',
            'full p99 ms',
            'floor p99 ms',
            'full/floor p99',
            'failed',
          ],
          rows.map((r) => [
            fmt(r.size),
            fmtSpread(r.full.rps),
            fmtSpread(r.floor.rps),
            fmtSpread(r.rpsRatio, 2),
            fmtSpread(r.full.p50),
            fmtSpread(r.floor.p50),
            fmtSpread(r.full.p99),
            fmtSpread(r.floor.p99),
            fmtSpread(r.p99Ratio, 2),
            `${r.full.failed}/${r.floor.failed}`,
          ]),
        ),
      );
      const layers = rows[0]?.layers;
      if (layers) {
        const groups = Object.keys(layers[0]!.stats.cpuMs);
        output.push(
          table(
            `From the full stack to the floor at ${fmt(rows[0]!.size)} sessions, same runs (interleaved): throughput, and CPU ms per refresh by process (${cpus().length} cores = ${fmt(cpus().length * 1000)} ms of CPU per second; "machine" counts every process, other users' too)`,
            [
              'target',
              'refresh/s',
              '÷ floor',
              '÷ tutorial',
              'p99 ms',
              ...groups.map((g) => `${g} CPU ms`),
            ],
            layers.map((layer) => [
              TARGETS[layer.name],
              fmtSpread(layer.stats.rps),
              fmtSpread(layer.rpsToFloor, 2),
              fmtSpread(layer.rpsToTutorial, 2),
              fmtSpread(layer.stats.p99),
              ...groups.map((g) => fmtSpread(layer.stats.cpuMs[g]!, 2)),
            ]),
          ),
        );
      }
      const first = rows[0]!;
      const last = rows[rows.length - 1]!;
      const scaling = {
        largest: last.size,
        smallest: first.size,
        fullRps: last.full.rps.median / first.full.rps.median,
        fullP99: last.full.p99.median / first.full.p99.median,
        floorRps: last.floor.rps.median / first.floor.rps.median,
        floorP99: last.floor.p99.median / first.floor.p99.median,
      };
      results.scaling = scaling;
      output.push(
        table(
          `Scaling: ${fmt(last.size)} / ${fmt(first.size)} stored sessions (ratio of medians; each size is a separate run)`,
          [
            'target',
            'throughput ratio',
            'refresh cost ratio (1 / throughput)',
            'p99 ratio',
            'seed time (s) per size',
            'GIN index time (s) per size',
          ],
          [
            [
              'full stack',
              fmt(scaling.fullRps, 2),
              fmt(1 / scaling.fullRps, 2),
              fmt(scaling.fullP99, 2),
              rows.map((r) => fmt(r.seedSeconds, 1)).join(' / '),
              rows.map((r) => fmt(r.indexSeconds, 1)).join(' / '),
            ],
            [
              'floor',
              fmt(scaling.floorRps, 2),
              fmt(1 / scaling.floorRps, 2),
              fmt(scaling.floorP99, 2),
              '',
              '',
            ],
          ],
        ),
      );
      output.push(
        table(
          'Resident memory under refresh load (peak RSS, MiB)',
          ['stored sessions', 'demo app', 'floor'],
          rows.map((r) => [fmt(r.size), fmt(r.appRssMiB), fmt(r.floorRssMiB)]),
        ),
      );
      const reject = results.rejection as RejectRow[] | undefined;
      if (reject) {
        output.push(
          table(
            `Rejection cost at ${fmt(CONFIG.sizes[0]!)} sessions (full stack), ${CONFIG.rejectRuns} runs of ${CONFIG.rejectSeconds} s; ratio = rejections/s ÷ valid refreshes/s in the same iteration`,
            ['presented token', 'answers/s', 'p99 ms', 'ratio to valid'],
            reject.map((r) => [
              r.kind,
              fmtSpread(r.rps),
              r.p99.n ? fmtSpread(r.p99) : '',
              fmtSpread(r.ratio, 2),
            ]),
          ),
        );
        const forged = reject.find((r) => r.kind.startsWith('forged'));
        const garbage = reject.find((r) => r.kind.startsWith('garbage'));
        if (forged && garbage) {
          const forgedToGarbage = forged.rps.median / garbage.rps.median;
          results.forgedToGarbage = forgedToGarbage;
          output.push(
            `forged ÷ garbage rejection throughput (medians): ${fmt(forgedToGarbage, 2)}`,
          );
        }
      }
      const profile = results.profile as ProfileReading | undefined;
      if (profile) {
        output.push(
          table(
            `CPU profile of the app under refresh load (node --cpu-prof, ${fmt(profile.totalMs)} ms sampled): top frames by self time`,
            ['self %', 'function', 'where'],
            profile.top.map((f) => [fmt(f.selfPct, 1), f.functionName, f.where]),
          ),
          table(
            'Self time by origin',
            ['self %', 'origin'],
            profile.byOrigin.map((o) => [fmt(o.selfPct, 1), o.origin]),
          ),
        );
      }
    }
    // The in-memory profile runs with --profile / --full (or --only=cpu): the quick run has no room.
    if (ONLY ? wants('cpu') : PROFILE) {
      await section('cpu', results, output, async () => {
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
      });
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
      await section('authenticate', results, output, async () => {
        const cost = await authenticateCost(mongo, redis);
        results.authenticate = cost;
        const head = [
          'variant',
          'answers/s',
          '÷ baseline',
          'p99 ms',
          'app CPU µs/answer',
          `database CPU µs/answer (${cost.dbGroups.join(' + ') || 'not measured'})`,
          'failed',
        ];
        const cells = (r: GuardRow) => [
          r.label,
          fmtSpread(r.rps),
          fmtSpread(r.ratio, 2),
          fmtSpread(r.p99),
          fmtSpread(r.appCpuUs),
          fmtSpread(r.dbCpuUs),
          String(r.failed),
        ];
        output.push(
          table(
            `authenticate: what checkRevocation costs per request, ${fmt(cost.sessions)} sessions' access tokens cycled, ${CONFIG.connections} connections, one server process, ${CONFIG.runs} alternated runs of ${CONFIG.seconds} s; baseline = plain authenticate`,
            head,
            cost.guards.map(cells),
          ),
          table(
            `Refresh with and without the revocation bus, same process and runs; baseline = no bus`,
            head,
            cost.refresh.map(cells),
          ),
        );
      });
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
