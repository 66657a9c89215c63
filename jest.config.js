/**
 * Two projects, chosen by file name, not folder: a test that needs no server (no Redis, no
 * MongoDB-wire server, no browser, no packed tarball) is named `*.unit.test.ts`, wherever it lives,
 * and runs in `unit` (no global setup; `npm run test:unit`, seconds, no services needed). Every other
 * `*.test.ts` runs in `integration` (`npm run test:integration`), behind
 * test/support/global-setup.ts, which starts real Redis and a real MongoDB-wire server unless
 * REDIS_URL / MONGODB_URI are set. `npm test` runs both.
 *
 * Folders say what a test is about, the suffix how it runs (README.md, "Tests against real
 * services"): test/core (domain and RotationService), test/contract (the port contracts, per
 * adapter), test/express (the router, authenticate, cookie and error table on a bare express():
 * test/support/router-harness.ts, never the example app), test/mongoose, test/redis,
 * test/prometheus, test/worker (src/adapters/bullmq-worker and the bin), test/demo (the example app's own
 * journeys: test/support/app-harness.ts), test/processes (environment, start-up and signals of
 * the runnable processes), test/reliability, test/client (refresh-rotation/client on doubles of
 * the browser), test/browser, test/package, test/lint, and
 * test/support (helpers, with tests of their own).
 */
const transform = {
  '^.+\\.ts$': ['ts-jest', { diagnostics: false }],
  // jose 6 ships ES modules only, which jest's CommonJS sandbox cannot require on Node 20 (Node
  // itself can): its files are compiled to CommonJS like ours.
  '/node_modules/jose/.+\\.js$': [
    'ts-jest',
    { diagnostics: false, tsconfig: { allowJs: true, module: 'commonjs', target: 'ES2022' } },
  ],
};
const transformIgnorePatterns = ['/node_modules/(?!jose/)'];

/** `refresh-rotation` and its subpaths, as workers/, demo/ and examples/ import them: the src entry files (tsconfig.json `paths`). */
const moduleNameMapper = {
  '^refresh-rotation$': '<rootDir>/src/index.ts',
  '^refresh-rotation/(memory|mongoose|bullmq|express|redis)$': '<rootDir>/src/adapters/$1/index.ts',
  '^refresh-rotation/worker$': '<rootDir>/src/adapters/bullmq-worker/index.ts',
  '^refresh-rotation/metrics$': '<rootDir>/src/adapters/prometheus/index.ts',
  '^refresh-rotation/client$': '<rootDir>/src/client/index.ts',
};

/** @type {import('jest').Config} */
module.exports = {
  testTimeout: 30_000,
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      transformIgnorePatterns,
      moduleNameMapper,
      testMatch: ['<rootDir>/test/**/*.unit.test.ts'],
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      transform,
      transformIgnorePatterns,
      moduleNameMapper,
      testMatch: ['<rootDir>/test/**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '\\.unit\\.test\\.ts$'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
      slowTestThreshold: 30,
    },
  ],
};
