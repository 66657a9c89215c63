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
  /** The browser module: built on its own (below), listed here with every entry point. */
  'client/index': 'src/client/index.ts',
};
const { 'client/index': client, ...server } = library;

export default defineConfig([
  {
    entry: { ...server, 'bin/refresh-rotation-worker': 'workers/main.ts' },
    format: ['esm', 'cjs'],
    splitting: true,
    // The browser module's types too: this build's type pass deletes every .d.ts under dist/ first.
    dts: { entry: library },
    sourcemap: true,
    // Everything but the browser module, which the next build writes at the same time.
    clean: ['!client/**'],
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
   * `refresh-rotation/client`, for browsers: one self-contained file per format, no shared chunk
   * (it imports nothing; a lint layer keeps it so), so a page can load dist/client/index.mjs as it
   * is and a bundler pulls in nothing of the server. Both formats like every entry point:
   * bundlers and `<script type="module">` take the ES module, a user's CommonJS test runner can
   * require it, and two copies on one page coordinate as two tabs do (Web Locks, BroadcastChannel).
   */
  {
    entry: { 'client/index': client },
    format: ['esm', 'cjs'],
    platform: 'browser',
    target: 'es2020',
    sourcemap: true,
    // Its names are fixed (index.*); the first build's clean leaves them to be overwritten here.
    clean: false,
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
