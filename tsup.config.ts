import { cpSync } from 'node:fs';
import { defineConfig } from 'tsup';

/**
 * One build for every entry point, in both formats, with code splitting in both: each class
 * (`RefreshRotationError`, `RotationService`…) exists once per format, in a chunk every entry
 * point that needs it imports, so `instanceof` holds across `refresh-rotation` and its subpaths.
 * The worker bin (`workers/main.ts`) is built with them and shares their chunks.
 */
export const library = {
  index: 'src/index.ts',
  'adapters/memory/index': 'src/adapters/memory/index.ts',
  'adapters/mongoose/index': 'src/adapters/mongoose/index.ts',
  'adapters/bullmq/index': 'src/adapters/bullmq/index.ts',
  'adapters/express/index': 'src/adapters/express/index.ts',
  'adapters/redis/index': 'src/adapters/redis/index.ts',
  'adapters/bullmq-worker/index': 'src/adapters/bullmq-worker/index.ts',
  'adapters/prometheus/index': 'src/adapters/prometheus/index.ts',
  /**
   * The browser module. It imports nothing (a lint layer keeps it so), so it shares no chunk with
   * the server entries. In both formats like the others: bundlers and `<script type="module">`
   * take the ES module, and a user's CommonJS test runner (jest) can still require it. Two copies
   * on one page would coordinate as two tabs do (Web Locks, BroadcastChannel), not conflict.
   */
  'client/index': 'src/client/index.ts',
};

export default defineConfig([
  {
    entry: { ...library, 'bin/refresh-rotation-worker': 'workers/main.ts' },
    format: ['esm', 'cjs'],
    splitting: true,
    dts: { entry: library },
    sourcemap: true,
    clean: true,
    target: 'node20',
    external: [
      'express',
      'mongoose',
      'bullmq',
      'ioredis',
      'pino',
      'prom-client',
      'refresh-rotation',
      /^refresh-rotation\//,
    ],
  },
  /**
   * The demo app, compiled for `npm start` and the image (no tsx at run time), into build/ (not
   * published). Its dependencies stay in node_modules; the static demo page is copied beside it.
   */
  {
    entry: { server: 'demo/server.ts' },
    outDir: 'build/demo',
    format: ['cjs'],
    sourcemap: true,
    clean: true,
    target: 'node20',
    skipNodeModulesBundle: true,
    onSuccess: async () => {
      cpSync('demo/public', 'build/demo/public', { recursive: true });
    },
  },
]);
