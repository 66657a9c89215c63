/**
 * Two projects: `unit` (pure, no services) and `integration` (real Redis and a real
 * MongoDB-wire server, started by test/support/global-setup.ts unless REDIS_URL / MONGODB_URI
 * are set; it also holds the real-browser tests in test/browser and the packed-tarball tests in
 * test/package). `npm test` runs both; `npm run test:unit` only the first.
 */
const transform = {
  '^.+\\.ts$': ['ts-jest', { diagnostics: false }],
};

/** `refresh-rotation` and its subpaths, as examples/ and workers/ import them: the src entry files (tsconfig.json `paths`). */
const moduleNameMapper = {
  '^refresh-rotation$': '<rootDir>/src/index.ts',
  '^refresh-rotation/(memory|mongoose|bullmq|express|redis)$': '<rootDir>/src/adapters/$1/index.ts',
  '^refresh-rotation/worker$': '<rootDir>/src/worker/index.ts',
  '^refresh-rotation/metrics$': '<rootDir>/src/adapters/prometheus/index.ts',
};

/** @type {import('jest').Config} */
module.exports = {
  testTimeout: 30_000,
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      moduleNameMapper,
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      transform,
      moduleNameMapper,
      testMatch: [
        '<rootDir>/test/contract/**/*.test.ts',
        '<rootDir>/test/integration/**/*.test.ts',
        '<rootDir>/test/reliability/**/*.test.ts',
        '<rootDir>/test/browser/**/*.test.ts',
        '<rootDir>/test/package/**/*.test.ts',
      ],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
      slowTestThreshold: 30,
    },
  ],
};
