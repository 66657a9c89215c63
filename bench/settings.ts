/**
 * What a benchmark run was asked for (the command-line flags) and where it writes: the sizes and
 * run lengths of the quick and the full run, the scratch directory, the results directory and the
 * partial-results file kept up to date between sections, and the progress log on stderr.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './lib';

export const FULL = process.argv.includes('--full');
export const PROFILE = process.argv.includes('--profile') || FULL;
export const ONLY = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
export const wants = (section: string) => !ONLY || ONLY.includes(section);

export const SIZES = process.argv
  .find((a) => a.startsWith('--sizes='))
  ?.slice('--sizes='.length)
  .split(',')
  .map(Number);
export const BACKEND =
  process.argv.find((a) => a.startsWith('--backend='))?.slice('--backend='.length) ?? 'postgresql';
if (BACKEND !== 'postgresql' && BACKEND !== 'sqlite')
  throw new Error(`--backend=${BACKEND}: expected postgresql or sqlite`);
// FerretDB v1 on SQLite scans the whole collection on every query (see docs/benchmarks.md), so the
// quick run stays at 1k and 10k sessions there. The quick run must stay under 3 minutes on a
// loaded 2-core machine: 50,000 sessions (seeded in ~12 s), not 100,000 (~20 s); the full run
// does 1,000 / 100,000 / 1,000,000.
export const CONFIG = FULL
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

export const work = mkdtempSync(join(tmpdir(), 'rr-bench-'));
export const RESULTS_DIR = join(ROOT, 'bench', 'results');
export const STAMP = new Date().toISOString().replace(/[:.]/g, '-');
export const PARTIAL = join(RESULTS_DIR, `${FULL ? 'full' : 'quick'}-${STAMP}.partial.json`);
mkdirSync(RESULTS_DIR, { recursive: true });

export function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}
