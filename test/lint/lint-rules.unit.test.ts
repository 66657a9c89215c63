/**
 * The lint rules that keep the layers (eslint.config.mjs) and the type-aware promise rules: each
 * planted violation must fail lint with the rule meant for it, and one allowed snippet per layer
 * must pass, so a config that flags everything fails here too. ESLint's Node API runs in a child
 * process: it loads eslint.config.mjs with import(), which jest's module sandbox does not allow.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const LAYERS = '@typescript-eslint/no-restricted-imports';
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface Case {
  /** A path inside the real tree (the file need not exist for the layer cases). */
  file: string;
  code: string;
  /** `true`: lint with type information (the file must exist: its text is replaced). */
  typed?: boolean;
}

/** `rule: message` of every problem ESLint reports for each case, in one child process. */
function lint(cases: readonly Case[]): string[][] {
  const script = `
    const { ESLint } = require('eslint');
    const tseslint = require('typescript-eslint');
    const cases = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
    // The layer cases lint files that do not exist, which typed parsing refuses: they run without
    // type information (the layer rules need none); the typed cases lint real paths.
    const untyped = new ESLint({ cwd: process.cwd(), overrideConfig: tseslint.configs.disableTypeChecked });
    const typed = new ESLint({ cwd: process.cwd() });
    (async () => {
      const out = [];
      for (const c of cases) {
        const [result] = await (c.typed ? typed : untyped).lintText(c.code, { filePath: c.file });
        out.push(result.messages.map((m) => (m.ruleId ?? 'parse') + ': ' + m.message));
      }
      process.stdout.write(JSON.stringify(out));
    })().catch((error) => { console.error(error); process.exit(1); });
  `;
  const child = spawnSync(process.execPath, ['-e', script], {
    cwd: ROOT,
    input: JSON.stringify(cases.map((c) => ({ ...c, file: join(ROOT, c.file) }))),
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (child.status !== 0) throw new Error(`eslint child failed: ${child.stderr || child.error}`);
  return JSON.parse(child.stdout) as string[][];
}

/** One import and a use of it, so no other rule (unused vars, type-only imports) speaks. */
const uses = (importLine: string, name: string) =>
  `${importLine}\nexport const used = [${name}];\n`;

const violations: Array<[string, Case, string]> = [
  [
    'the domain imports an adapter',
    {
      file: 'src/domain/y.ts',
      code: uses("import { InlineTokenJobs } from '../adapters/memory';", 'InlineTokenJobs'),
    },
    'src/domain imports nothing outside src/domain',
  ],
  [
    'the domain imports the service',
    {
      file: 'src/domain/y.ts',
      code: uses("import { RotationService } from '../rotation-service';", 'RotationService'),
    },
    'src/domain imports nothing outside src/domain',
  ],
  [
    'the domain imports a framework',
    { file: 'src/domain/y.ts', code: uses("import express from 'express';", 'express') },
    'src/domain imports no package',
  ],
  [
    'the service imports mongoose',
    { file: 'src/rotation-service.ts', code: uses("import mongoose from 'mongoose';", 'mongoose') },
    'A use case at the root of src/ imports no framework or driver',
  ],
  [
    "the service's revocation state imports ioredis",
    { file: 'src/revocation-state.ts', code: uses("import Redis from 'ioredis';", 'Redis') },
    'A use case at the root of src/ imports no framework or driver',
  ],
  [
    'the audit trail imports an adapter',
    {
      file: 'src/audit-trail.ts',
      code: uses("import { RefreshMetrics } from './adapters/prometheus';", 'RefreshMetrics'),
    },
    'A use case at the root of src/ (the service, its options, any file beside them) imports only the domain',
  ],
  [
    'the options import an adapter',
    {
      file: 'src/options.ts',
      code: uses("import { InlineTokenJobs } from './adapters/memory';", 'InlineTokenJobs'),
    },
    'A use case at the root of src/ (the service, its options, any file beside them) imports only the domain',
  ],
  [
    "the options take the service's exception (the JWT adapter)",
    {
      file: 'src/options.ts',
      code: uses(
        "import { JwtAccessTokens } from './adapters/jsonwebtoken/jwt-access-tokens';",
        'JwtAccessTokens',
      ),
    },
    'A use case at the root of src/ (the service, its options, any file beside them) imports only the domain',
  ],
  [
    'a new file at the root of src/ imports mongoose',
    { file: 'src/sessions.ts', code: uses("import mongoose from 'mongoose';", 'mongoose') },
    'A use case at the root of src/ imports no framework or driver',
  ],
  [
    'a new file at the root of src/ imports an adapter',
    {
      file: 'src/sessions.ts',
      code: uses("import { InlineTokenJobs } from './adapters/memory';", 'InlineTokenJobs'),
    },
    'imports only the domain and the other use cases',
  ],
  [
    'a new folder of src/ imports a driver',
    {
      file: 'src/sessions/y.ts',
      code: uses("import { Redis } from 'ioredis';", 'Redis'),
    },
    'Outside src/adapters/, src/ imports no framework or driver',
  ],
  [
    'the service imports the worker bin',
    {
      file: 'src/rotation-service.ts',
      code: uses("import { loadWorkerEnv } from '../workers/env';", 'loadWorkerEnv'),
    },
    'src/ imports nothing outside src/',
  ],
  [
    'the root entry exports an adapter',
    { file: 'src/index.ts', code: "export { MemoryVersionStore } from './adapters/memory';\n" },
    'The root entry exports the use cases at the root of src/ and the domain',
  ],
  [
    'an adapter imports another adapter',
    {
      file: 'src/adapters/express/y.ts',
      code: uses("import { MemoryVersionStore } from '../memory';", 'MemoryVersionStore'),
    },
    'src/adapters/express/ is an adapter',
  ],
  [
    'an adapter imports the service as a value',
    {
      file: 'src/adapters/express/y.ts',
      code: uses("import { RotationService } from '../../rotation-service';", 'RotationService'),
    },
    'An adapter imports the service and its options as types only',
  ],
  [
    'an adapter imports the worker bin',
    {
      file: 'src/adapters/redis/y.ts',
      code: uses("import { loadWorkerEnv } from '../../../workers/env';", 'loadWorkerEnv'),
    },
    'src/adapters/redis/ is an adapter',
  ],
  [
    'the worker imports an adapter outside its exceptions',
    {
      file: 'src/adapters/bullmq-worker/processors/y.ts',
      code: uses("import { authenticate } from '../../express';", 'authenticate'),
    },
    'src/adapters/bullmq-worker/ is an adapter',
  ],
  [
    'src/ imports the package by name',
    {
      file: 'src/adapters/memory/y.ts',
      code: uses("import { OptionsError } from 'refresh-rotation';", 'OptionsError'),
    },
    'never the package by name',
  ],
  [
    'the demo app imports src/',
    {
      file: 'demo/y.ts',
      code: uses("import { RotationService } from '../src/rotation-service';", 'RotationService'),
    },
    'demo/ imports the package by name through its public entry points',
  ],
  [
    'an example imports src/',
    {
      file: 'examples/y.ts',
      code: uses("import { RotationService } from '../src/rotation-service';", 'RotationService'),
    },
    'examples/ imports the package by name through its public entry points',
  ],
  [
    'the worker bin imports a path the package does not export',
    {
      file: 'workers/y.ts',
      code: uses(
        "import { settlesWithin } from 'refresh-rotation/dist/worker/shutdown';",
        'settlesWithin',
      ),
    },
    'Not a public entry point',
  ],
  [
    "the demo app reads the worker bin's configuration",
    {
      file: 'demo/y.ts',
      code: uses("import { loadWorkerEnv } from '../workers/env';", 'loadWorkerEnv'),
    },
    'demo/ does not import workers/, examples/',
  ],
  [
    'the worker bin imports the demo app',
    {
      file: 'workers/y.ts',
      code: uses("import { createApp } from '../demo/app';", 'createApp'),
    },
    'workers/ does not import demo/, examples/',
  ],
  [
    "an example a user copies leans on the repository's start-up code",
    {
      file: 'examples/y.ts',
      code: uses("import { loadDotEnv } from '../startup/env-reader';", 'loadDotEnv'),
    },
    'examples/ does not import demo/, workers/, startup/',
  ],
  [
    'the shared start-up code imports the demo app',
    {
      file: 'startup/y.ts',
      code: uses("import { loadEnv } from '../demo/env';", 'loadEnv'),
    },
    'startup/ does not import demo/, workers/, examples/',
  ],
  [
    'a benchmark imports src/ beyond its one exception',
    {
      file: 'bench/y.ts',
      code: uses("import { RotationService } from '../src/rotation-service';", 'RotationService'),
    },
    'bench/ imports the package by name through its public entry points',
  ],
  [
    'a benchmark imports the worker bin instead of running it',
    {
      file: 'bench/y.ts',
      code: uses("import { loadWorkerEnv } from '../workers/env';", 'loadWorkerEnv'),
    },
    'bench/ does not import workers/, examples/, startup/',
  ],
  [
    'the shared start-up code imports src/ (even the pure duration parser)',
    {
      file: 'startup/y.ts',
      code: uses("import { parseDuration } from '../src/domain/duration';", 'parseDuration'),
    },
    'startup/ imports the package by name through its public entry points',
  ],
  [
    'the browser module imports the domain',
    {
      file: 'src/client/y.ts',
      code: uses("import { parseDuration } from '../domain/duration';", 'parseDuration'),
    },
    'src/client is the browser module: it imports its own files only',
  ],
  [
    'the browser module imports a node: built-in',
    {
      file: 'src/client/y.ts',
      code: uses("import { randomUUID } from 'node:crypto';", 'randomUUID'),
    },
    'src/client is the browser module: it imports its own files only',
  ],
];

const allowed: Array<[string, Case]> = [
  [
    'the browser module: its own files',
    {
      file: 'src/client/y.ts',
      code: "import { retryDelay } from './backoff';\nexport const used = [retryDelay];\n",
    },
  ],
  [
    'the domain: its own files and node: built-ins',
    {
      file: 'src/domain/y.ts',
      code: "import { createHash } from 'node:crypto';\nimport { OptionsError } from './errors';\nexport const used = [createHash, OptionsError];\n",
    },
  ],
  [
    'the service: the domain, its options, uuid and its one exception',
    {
      file: 'src/rotation-service.ts',
      code: [
        "import { v7 } from 'uuid';",
        "import { JwtAccessTokens } from './adapters/jsonwebtoken/jwt-access-tokens';",
        "import { parseDuration } from './domain/duration';",
        "import { resolveOptions } from './options';",
        "import { AuditTrail } from './audit-trail';",
        "import { RevocationState } from './revocation-state';",
        'export const used = [v7, JwtAccessTokens, parseDuration, resolveOptions, AuditTrail, RevocationState];',
        '',
      ].join('\n'),
    },
  ],
  [
    'a new use case beside the service: the domain, the other use cases, uuid',
    {
      file: 'src/sessions.ts',
      code: [
        "import { v7 } from 'uuid';",
        "import { OptionsError } from './domain/errors';",
        "import type { RotationService } from './rotation-service';",
        'export const used = [v7, OptionsError];',
        'export type Service = RotationService;',
        '',
      ].join('\n'),
    },
  ],
  [
    'the root entry: the service and the domain',
    {
      file: 'src/index.ts',
      code: "export { RotationService } from './rotation-service';\nexport { OptionsError } from './domain/errors';\n",
    },
  ],
  [
    "an adapter: its framework, the domain, the service's types, its own files",
    {
      file: 'src/adapters/express/y.ts',
      code: [
        "import express from 'express';",
        "import { InvalidGrantError } from '../../domain/errors';",
        "import type { RotationService } from '../../rotation-service';",
        "import { createRefreshRouter } from './router';",
        'export const used = [express, InvalidGrantError, createRefreshRouter];',
        'export type Service = RotationService;',
        '',
      ].join('\n'),
    },
  ],
  [
    'the worker: its stated exceptions (the jobs contract, the Mongoose repository)',
    {
      file: 'src/adapters/bullmq-worker/processors/y.ts',
      code: [
        "import { parseTouchPayload } from '../../bullmq/jobs';",
        "import { MongooseRefreshTokenRepository } from '../../mongoose';",
        "import type { Clock } from '../../../domain/refresh-token';",
        'export const used = [parseTouchPayload, MongooseRefreshTokenRepository];',
        'export type Time = Clock;',
        '',
      ].join('\n'),
    },
  ],
  [
    "the metrics adapter: the worker's report types",
    {
      file: 'src/adapters/prometheus/y.ts',
      code: "import type { HealthReport } from '../bullmq-worker/health-report';\nexport type Report = HealthReport;\n",
    },
  ],
  [
    'the demo app: public entry points, startup/, its own files',
    {
      file: 'demo/y.ts',
      code: [
        "import { RotationService } from 'refresh-rotation';",
        "import { authenticate } from 'refresh-rotation/express';",
        "import { loadDotEnv } from '../startup/env-reader';",
        "import { createApp } from './app';",
        'export const used = [RotationService, authenticate, loadDotEnv, createApp];',
        '',
      ].join('\n'),
    },
  ],
  [
    'an example: public entry points only',
    {
      file: 'examples/y.ts',
      code: [
        "import { RotationService } from 'refresh-rotation';",
        "import { createRefreshRouter } from 'refresh-rotation/express';",
        'export const used = [RotationService, createRefreshRouter];',
        '',
      ].join('\n'),
    },
  ],
  [
    'the worker bin: public entry points and startup/',
    {
      file: 'workers/y.ts',
      code: [
        "import { startTokenWorkers } from 'refresh-rotation/worker';",
        "import { createWorkerMetrics } from 'refresh-rotation/metrics';",
        "import { settlesWithin } from '../startup/failures';",
        'export const used = [startTokenWorkers, createWorkerMetrics, settlesWithin];',
        '',
      ].join('\n'),
    },
  ],
  [
    'a benchmark: public entry points, the demo app, the test servers and the token codec',
    {
      file: 'bench/y.ts',
      code: [
        "import { RotationService } from 'refresh-rotation';",
        "import { createApp } from '../demo/app';",
        "import { TokenCodec } from '../src/domain/token-codec';",
        "import { startRedis } from '../test/support/servers';",
        'export const used = [RotationService, createApp, TokenCodec, startRedis];',
        '',
      ].join('\n'),
    },
  ],
  [
    'the shared start-up code: the package by name',
    {
      file: 'startup/y.ts',
      code: [
        "import { OptionsError, parseDuration } from 'refresh-rotation';",
        'export const used = [OptionsError, parseDuration];',
        '',
      ].join('\n'),
    },
  ],
];

const floating = `
async function work(): Promise<void> {}
export async function run(list: number[]): Promise<void> {
  work();
  list.forEach(async () => {
    await work();
  });
  await 42;
}
`;
const awaited = `
async function work(): Promise<void> {}
export async function run(list: number[]): Promise<void> {
  await work();
  await Promise.all(list.map(async () => work()));
}
`;

describe('lint keeps the layers and the promises', () => {
  let results: string[][];

  beforeAll(() => {
    results = lint([
      ...violations.map(([, c]) => c),
      ...allowed.map(([, c]) => c),
      // A real file, so the project service gives it types; its text is replaced.
      { file: 'src/domain/duration.ts', code: floating, typed: true },
      { file: 'src/domain/duration.ts', code: awaited, typed: true },
    ]);
  });

  it.each(violations.map(([name, , message], index) => [name, message, index] as const))(
    'fails when %s',
    (_name, message, index) => {
      expect(results[index]).toEqual([expect.stringMatching(`^${LAYERS}: .*${escape(message)}`)]);
    },
  );

  it.each(allowed.map(([name], index) => [name, violations.length + index] as const))(
    'passes %s',
    (_name, index) => {
      expect(results[index]).toEqual([]);
    },
  );

  it('fails on a floating promise, a promise where a void callback goes, and awaiting a non-promise', () => {
    const problems = results[violations.length + allowed.length];
    expect(problems?.map((problem) => problem.split(':')[0])).toEqual([
      '@typescript-eslint/no-floating-promises',
      '@typescript-eslint/no-misused-promises',
      '@typescript-eslint/await-thenable',
    ]);
  });

  it('passes the same code with every promise awaited', () => {
    expect(results[violations.length + allowed.length + 1]).toEqual([]);
  });
});
