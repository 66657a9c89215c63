// @ts-check
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const ROOT = dirname(fileURLToPath(import.meta.url));

/**
 * The layers, every import pointing inward (test/lint/lint-rules.unit.test.ts plants one violation of
 * each rule below and expects lint to fail):
 *
 * - domain, `src/domain/`: imports nothing outside itself, no package but `node:` built-ins.
 * - use cases, every file at the root of `src/` but the entry (`rotation-service.ts`, `options.ts`,
 *   and any file added beside them): the domain, one another (and `uuid`). Two exceptions:
 *   the service builds its `AccessTokens` as `JwtAccessTokens` (src/adapters/jsonwebtoken), because
 *   the public `new RotationService(options)` takes key material, not a signer; and its tracer as
 *   `openTelemetryTracing` (src/adapters/opentelemetry), on by default, which loads
 *   `@opentelemetry/api` lazily so the root entry loads without it.
 * - root entry, `src/index.ts`: the use cases and the domain; never an adapter (those are
 *   the subpath entries, so a framework never loads through `refresh-rotation`).
 * - adapters, `src/adapters/<name>/`, the worker `src/adapters/bullmq-worker/` (the BullMQ
 *   consumer) included: the domain; `rotation-service` and `options` as types only; not each other,
 *   except the worker's use of `adapters/bullmq` (the jobs' wire contract it consumes) and
 *   `adapters/mongoose` (the repository `startTokenWorkers` builds on the given connection), and
 *   `adapters/prometheus` reading the worker's report types.
 * - client, `src/client/` (`refresh-rotation/client`, for browsers): its own files only.
 * - nothing in `src/` imports the package by name or anything outside `src/`; a folder of `src/`
 *   other than `domain/` and `adapters/` (a new one) imports no framework or driver.
 * - the runnable folders, `workers/` (the worker bin), `demo/` (the demo app: `npm run demo`,
 *   `npm start`, the image) and `examples/` (what a user copies), and `startup/` (the start-up code
 *   the bin and the demo share) import the package by name through its public entry points only,
 *   like a user's app, and not one another (`startup/` excepted, for the bin and the demo). No
 *   exception: the durations the variables take are parsed by the public `parseDuration`.
 * - `bench/` likewise, but for one named exception: `src/domain/token-codec`, with which the
 *   seeding mints the tokens of the records it writes straight into the collection.
 */
const PUBLIC_SUBPATHS = Object.keys(
  JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')).exports,
)
  .filter((key) => key.startsWith('./') && key !== './package.json')
  .map((key) => key.slice(2));

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** `from` (a folder) and `to` as the code writes the import: `./x`, `../x`. */
const specifier = (from, to) => {
  const relative = posix.relative(from, to);
  return relative.startsWith('..') ? relative : `./${relative}`;
};
/** `root` and every folder under it, as repository paths. */
const foldersOf = (root) => [
  root,
  ...readdirSync(`${ROOT}/${root}`, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => posix.relative(ROOT, `${entry.parentPath}/${entry.name}`)),
];
/** Matches imports written in `folder` that land in one of `targets` (folders or extension-less files). */
const into = (folder, targets) =>
  `^(?:${targets.map((target) => escape(specifier(folder, target))).join('|')})(?:/|$)`;
/** Matches imports written in `folder` that leave the folder `own` for anything but `allowed`. */
const leaving = (folder, own, allowed) => {
  const up = specifier(folder, posix.dirname(own));
  const exits = allowed.map(
    (target) => `${escape(specifier(folder, target).slice(up.length + 1))}(?:/|$)`,
  );
  return `^${escape(up)}/${exits.length > 0 ? `(?!${exits.join('|')})` : ''}`;
};
const pattern = (regex, message, extra = {}) => ({ regex, message, caseSensitive: true, ...extra });

const byName = pattern(
  '^refresh-rotation(?:/|$)',
  'src/ imports its own files by relative path, never the package by name.',
);
const restrict = (...patterns) => ({
  'no-restricted-imports': 'off',
  '@typescript-eslint/no-restricted-imports': ['error', { patterns }],
});

/** An adapter folder `own` (with its subfolders): the domain, service types, and `exceptions`. */
function adapterLayer(own, { values = [], types = [] } = {}) {
  return foldersOf(own).map((folder) => ({
    files: [`${folder}/*.ts`],
    rules: restrict(
      byName,
      pattern(
        leaving(folder, own, [
          'src/domain',
          'src/rotation-service',
          'src/options',
          ...values,
          ...types,
        ]),
        `${own}/ is an adapter: it imports the domain, the service's types and its own files, not other adapters or anything outside src/ (the layers: eslint.config.mjs).`,
      ),
      pattern(
        into(folder, ['src/rotation-service', 'src/options', ...types]),
        'An adapter imports the service and its options as types only (`import type`).',
        { allowTypeImports: true },
      ),
    ),
  }));
}

const adapters = readdirSync(`${ROOT}/src/adapters`, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => `src/adapters/${entry.name}`);
const exceptions = {
  'src/adapters/bullmq-worker': { values: ['src/adapters/bullmq', 'src/adapters/mongoose'] },
  'src/adapters/prometheus': { types: ['src/adapters/bullmq-worker'] },
};

/**
 * A runnable folder outside src/ (or the start-up code they share): the package's public entry
 * points, by name, and none of the folders in `others`, for the reason `why`.
 */
function appLayer(own, { others, why, src = [] }) {
  return {
    files: [`${own}/**/*.ts`],
    rules: restrict(
      pattern(
        `^(?:\\.\\./)+src(?:/|$)${src.length > 0 ? `(?!${src.map(escape).join('|')}$)` : ''}`,
        `${own}/ imports the package by name through its public entry points (refresh-rotation, refresh-rotation/express…), never src/.`,
      ),
      pattern(
        `^refresh-rotation/(?!(?:${PUBLIC_SUBPATHS.join('|')})$)`,
        `Not a public entry point: use refresh-rotation or refresh-rotation/{${PUBLIC_SUBPATHS.join(',')}}.`,
      ),
      pattern(
        `^(?:\\.\\./)+(?:${others.join('|')})(?:/|$)`,
        `${own}/ does not import ${others.map((other) => `${other}/`).join(', ')}: ${why}.`,
      ),
    ),
  };
}

/**
 * The use cases, `files` at the root of src/ (minus `ignores`): the domain, one another, `uuid` and
 * `node:` built-ins; `exceptions` (paths from src/, without extension) besides.
 */
function useCaseLayer(files, ignores, exceptions = []) {
  const allowed = ['domain/', '[^/]+$', ...exceptions.map((file) => `${escape(file)}$`)];
  return {
    files,
    ignores,
    rules: restrict(
      byName,
      pattern(
        `^\\./(?!${allowed.join('|')})`,
        'A use case at the root of src/ (the service, its options, any file beside them) imports only the domain and the other use cases.',
      ),
      pattern('^\\.\\./', 'src/ imports nothing outside src/.'),
      pattern(
        '^(?!node:|uuid$|\\.)',
        'A use case at the root of src/ imports no framework or driver: that is an adapter (src/adapters/).',
      ),
    ),
  };
}

const noProcessEnv = {
  selector: "MemberExpression[object.name='process'][property.name='env']",
  message: 'The library never reads process.env: take an option instead.',
};

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'coverage/**', 'bench/results/**', 'node_modules/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly' } },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  {
    // Type-aware: what a forgotten or misplaced promise looks like. TypeScript files only (the
    // project service reads tsconfig.json); the .js/.cjs/.mjs configs and scripts stay untyped.
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: ROOT } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
    },
  },
  // Compiled against the installed tarball by test/package, outside tsconfig.json.
  { ...tseslint.configs.disableTypeChecked, files: ['test/package/fixtures/**'] },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { module: 'writable', require: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  // The demo page: an ES module in the browser (it imports the built refresh-rotation/client).
  { files: ['demo/public/**/*.js'], languageOptions: { sourceType: 'module' } },

  // The layers of src/.
  // Anything in src/ the blocks below do not cover (a new folder beside domain/ and adapters/):
  // framework-free, like every layer of src/ but the adapters.
  {
    files: ['src/**/*.ts'],
    rules: restrict(
      byName,
      pattern(
        '^(?!node:|uuid$|\\.)',
        'Outside src/adapters/, src/ imports no framework or driver: that is an adapter (src/adapters/<technology>/).',
      ),
    ),
  },
  ...foldersOf('src/domain').map((folder) => ({
    files: [`${folder}/*.ts`],
    rules: restrict(
      byName,
      pattern(
        leaving(folder, 'src/domain', []),
        'src/domain imports nothing outside src/domain: the adapters depend on it, not the other way.',
      ),
      pattern(
        '^(?!node:|\\.)',
        'src/domain imports no package (frameworks and drivers belong in src/adapters/): node: built-ins only.',
      ),
    ),
  })),
  // Every file at the root of src/ but the entry is a use case (the service, its options, and any
  // file added beside them), so a new one is held to the same rule without being named here.
  useCaseLayer(['src/*.ts'], ['src/index.ts', 'src/rotation-service.ts']),
  useCaseLayer(
    ['src/rotation-service.ts'],
    [],
    ['adapters/jsonwebtoken/jwt-access-tokens', 'adapters/opentelemetry/otel-tracing'],
  ),
  {
    files: ['src/index.ts'],
    rules: restrict(
      byName,
      pattern(
        '^\\./(?!domain/|[^/]+$)',
        'The root entry exports the use cases at the root of src/ and the domain; adapters have their own subpath entries.',
      ),
      pattern('^(?!\\./)', 'The root entry re-exports its own files only.'),
    ),
  },
  ...adapters.flatMap((own) => adapterLayer(own, exceptions[own])),
  {
    files: ['src/client/**/*.ts'],
    rules: restrict(
      byName,
      pattern(
        '^(?!\\./)',
        'src/client is the browser module: it imports its own files only (no package, no node: built-in, nothing else in src/), so it bundles small and runs in any browser.',
      ),
    ),
  },
  { files: ['src/**/*.ts'], rules: { 'no-restricted-syntax': ['error', noProcessEnv] } },

  // Outside src/: like a user's app.
  appLayer('demo', {
    others: ['workers', 'examples'],
    why: 'the demo and the worker bin share only startup/, and the demo runs the bin as a process',
  }),
  appLayer('workers', {
    others: ['demo', 'examples'],
    why: 'the demo and the worker bin share only startup/',
  }),
  appLayer('examples', {
    others: ['demo', 'workers', 'startup'],
    why: "an example is what a user copies into their app: it imports the package, none of this repository's code",
  }),
  // The benchmarks measure the library, the demo and the bin as a user runs them; they start the
  // bin as a process, and their servers with test/support/servers.ts.
  appLayer('bench', {
    others: ['workers', 'examples', 'startup'],
    why: 'the benchmarks run the worker bin as a process and measure the demo app, nothing else',
    // Seeding writes records straight into the collection and mints their tokens with the codec.
    src: ['domain/token-codec'],
  }),
  appLayer('startup', {
    others: ['demo', 'workers', 'examples'],
    why: 'startup/ is shared by the worker bin and the demo, so it depends on neither',
  }),
);
