import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'adapters/memory/index': 'src/adapters/memory/index.ts',
    'adapters/mongoose/index': 'src/adapters/mongoose/index.ts',
    'adapters/bullmq/index': 'src/adapters/bullmq/index.ts',
    'adapters/express/index': 'src/adapters/express/index.ts',
    'adapters/redis/index': 'src/adapters/redis/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  external: ['express', 'mongoose', 'bullmq', 'ioredis'],
});
