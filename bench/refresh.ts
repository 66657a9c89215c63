/**
 * The `refresh` and `reject` sections: at each size, seed the sessions, start the targets side by
 * side and measure them one at a time, interleaved (the machine is shared and absolute numbers
 * drift); at the first size also the rejection of forged, unknown and garbage tokens and, with
 * --profile, a CPU profile of the demo app. The tables are in bench/refresh-tables.ts.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Connection } from 'mongoose';
import { MongooseRefreshTokenRepository } from 'refresh-rotation/mongoose';
import type { ServerHandle } from '../test/support/servers';
import {
  ROOT,
  codec,
  fmt,
  initialTokens,
  sampleRss,
  seedSessions,
  seedTutorialTokens,
  TUTORIAL_COLLECTION,
  spread,
  type Spread,
} from './lib';
import type { LoadResult } from './load';
import type { BenchMongo } from './postgres';
import { analyseProfile, type ProfileReading } from './profile';
import { CONFIG, FULL, PROFILE, log, wants, work } from './settings';
import {
  load,
  measuredLoad,
  openDb,
  startTarget,
  type MeasuredLoad,
  type Target,
  type TargetName,
} from './targets';

export interface TargetStats {
  rps: Spread;
  p50: Spread;
  p99: Spread;
  failed: number;
  /** CPU ms per refresh by process tree: app, FerretDB, PostgreSQL, load, machine. */
  cpuMs: Record<string, Spread>;
}

export interface LayerRow {
  name: TargetName;
  stats: TargetStats;
  /** This target's refresh/s ÷ the floor's, per iteration. */
  rpsToFloor: Spread;
  /** This target's refresh/s ÷ the tutorial rotation's, per iteration. */
  rpsToTutorial: Spread;
}

export interface RefreshRow {
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

export interface RejectRow {
  kind: string;
  rps: Spread;
  p99: Spread;
  /** rejection throughput / valid refresh throughput, per iteration. */
  ratio: Spread;
}

export async function refreshAtSize(
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
  const unknown = sample.map(() => codec.mint(randomBytes(16).toString('hex'), 0).token);
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
