/**
 * The `authenticate` section: what the `checkRevocation` options cost per request, and what the
 * revocation bus adds to a refresh, every variant in one server process (bench/authenticate-server.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, type ServerHandle } from '../test/support/servers';
import {
  cpuMeter,
  cpuMsPerRefresh,
  fmt,
  fmtSpread,
  spawnTs,
  spread,
  table,
  waitHttp,
  type Spread,
} from './lib';
import type { BenchMongo } from './postgres';
import { CONFIG, log, work } from './settings';
import { load, openDb, type CpuPerRefresh, type MeasuredLoad } from './targets';

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

/** Run the `authenticate` section: the measurements, and their two tables into `output`. */
export async function runAuthenticateSection(
  mongo: BenchMongo,
  redis: ServerHandle,
  results: Record<string, unknown>,
  output: string[],
): Promise<void> {
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
}
