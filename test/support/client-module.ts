/**
 * `refresh-rotation/client` built for the browser tests from src/ with esbuild (what tsup runs for
 * dist/), into a directory of their own: the demo page imports it as it imports dist/client in
 * `npm run demo`, and a test is not at the mercy of test/package rebuilding dist/ at the same time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';

export interface ClientModule {
  /** The ES module file, for the demo app's `clientModule`. */
  file: string;
  remove(): void;
}

export async function buildClientModule(): Promise<ClientModule> {
  const dir = mkdtempSync(join(tmpdir(), 'refresh-rotation-client-'));
  const file = join(dir, 'client.mjs');
  await build({
    entryPoints: [join(__dirname, '..', '..', 'src', 'client', 'index.ts')],
    outfile: file,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    logLevel: 'silent',
  });
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
