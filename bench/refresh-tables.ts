/** The tables of the `refresh` and `reject` sections, and the ratios derived from them. */
import { cpus } from 'node:os';
import { fmt, fmtSpread, table } from './lib';
import type { ProfileReading } from './profile';
import type { RefreshRow, RejectRow } from './refresh';
import { CONFIG } from './settings';
import { TARGETS } from './targets';

/**
 * Print the refresh rows (and the rejection and profile results already in `results`) as tables
 * into `output`; the scaling and forged-to-garbage ratios go into `results` too.
 */
export function reportRefresh(
  rows: RefreshRow[],
  results: Record<string, unknown>,
  output: string[],
): void {
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
      output.push(`forged ÷ garbage rejection throughput (medians): ${fmt(forgedToGarbage, 2)}`);
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
