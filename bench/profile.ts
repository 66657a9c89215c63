/** Reads a V8 .cpuprofile: top frames by self time, and self time grouped by origin (package or file). */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileReading {
  totalMs: number;
  top: Array<{ selfPct: number; functionName: string; where: string }>;
  byOrigin: Array<{ selfPct: number; origin: string }>;
}

function originOf(url: string, root: string): string {
  if (url === '') return '(native / V8 / GC)';
  if (url.startsWith('node:')) return 'node core';
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? path);
  }
  return relative(root, path).split('/').slice(0, 3).join('/');
}

export function analyseProfile(dir: string, root: string, limit = 15): ProfileReading {
  // The main thread's profile is the largest (tsx's loader thread writes a second, small one).
  const file = readdirSync(dir)
    .filter((name) => name.endsWith('.cpuprofile'))
    .sort((a, b) => statSync(join(dir, b)).size - statSync(join(dir, a)).size)[0];
  if (!file) throw new Error(`no .cpuprofile written in ${dir}`);
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, index) => {
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0));
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const frames = new Map<string, { ms: number; functionName: string; where: string }>();
  const origins = new Map<string, number>();
  for (const [id, micros] of self) {
    const { callFrame } = byId.get(id)!;
    const where = callFrame.url
      ? `${callFrame.url.startsWith('node:') ? callFrame.url : relative(root, callFrame.url.replace(/^file:\/\//, ''))}:${callFrame.lineNumber + 1}`
      : '';
    const key = `${callFrame.functionName}@${where}`;
    const frame = frames.get(key) ?? {
      ms: 0,
      functionName: callFrame.functionName || '(anonymous)',
      where,
    };
    frame.ms += micros / 1000;
    frames.set(key, frame);
    const origin = originOf(callFrame.url, root);
    origins.set(origin, (origins.get(origin) ?? 0) + micros);
  }
  return {
    totalMs: total / 1000,
    top: [...frames.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, limit)
      .map((f) => ({
        selfPct: (f.ms * 1000 * 100) / total,
        functionName: f.functionName,
        where: f.where,
      })),
    byOrigin: [...origins]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([origin, micros]) => ({ selfPct: (micros * 100) / total, origin })),
  };
}
