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
 * - service, `src/rotation-service.ts`, `src/options.ts` and the files the service hands its side
 *   concerns to (SERVICE_FILES): the domain (and `uuid`) and one another. One exception:
 *   the service builds its `AccessTokens` as `JwtAccessTokens` (src/adapters/jsonwebtoken), because
 *   the public `new RotationService(options)` takes key material, not a signer.
 * - root entry, `src/index.ts`: the service, options and the domain; never an adapter (those are
 *   the subpath entries, so a framework never loads through `refresh-rotation`).
 * - adapters, `src/adapters/<name>/` and the worker `src/worker/` (the BullMQ consumer): the domain;
 *   `rotation-service` and `options` as types only; not each other, except the worker's use of
 *   `adapters/bullmq` (the jobs' wire contract it consumes) and `adapters/mongoose` (the repository
 *   `startTokenWorkers` builds on the given connection), and `adapters/prometheus` reading the
 *   worker's report types.
 * - nothing in `src/` imports the package by name or anything outside `src/`.
 * - `examples/`, `workers/` (the worker bin) and `boot/` (their shared start-up code) import the
 *   package by name through its public entry points only, like a user's app, and not one another
 *   (`boot/` excepted). One exception: `boot/` reads `src/domain/duration` (pure), so environment
 *   variables take exactly the durations the options take.
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
  'src/worker': { values: ['src/adapters/bullmq', 'src/adapters/mongoose'] },
  'src/adapters/prometheus': { types: ['src/worker'] },
};

/** examples/, workers/ and boot/: the package's public entry points, by name. */
function appLayer(own, { others, src = [] }) {
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
        `${own}/ does not import ${others.join(' or ')}/ (shared start-up code lives in boot/).`,
      ),
    ),
  };
}

/** The use cases and what they hand their side concerns to: revocation state, audit, inputs. */
const SERVICE_FILES = [
  'src/rotation-service.ts',
  'src/options.ts',
  'src/revocation-state.ts',
  'src/audit-trail.ts',
  'src/rotation-values.ts',
];
const SERVICE_MODULES = SERVICE_FILES.map(
  (file) => `${escape(posix.basename(file, '.ts'))}$`,
).join('|');

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

  // The layers of src/.
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
  ...SERVICE_FILES.map((file) => ({
    files: [file],
    rules: restrict(
      byName,
      pattern(
        `^\\./(?!domain/|${SERVICE_MODULES}${file === 'src/rotation-service.ts' ? '|adapters/jsonwebtoken/jwt-access-tokens$' : ''})`,
        'The service and its options import only the domain.',
      ),
      pattern('^\\.\\./', 'src/ imports nothing outside src/.'),
      pattern(
        '^(?!node:|uuid$|\\.)',
        'The service and its options import no framework or driver: that is an adapter (src/adapters/).',
      ),
    ),
  })),
  {
    files: ['src/index.ts'],
    rules: restrict(
      byName,
      pattern(
        '^\\./(?!domain/|options$|rotation-service$)',
        'The root entry exports the service, its options and the domain; adapters have their own subpath entries.',
      ),
      pattern('^(?!\\./)', 'The root entry re-exports its own files only.'),
    ),
  },
  ...[...adapters, 'src/worker'].flatMap((own) => adapterLayer(own, exceptions[own])),
  { files: ['src/**/*.ts'], rules: { 'no-restricted-syntax': ['error', noProcessEnv] } },

  // Outside src/: like a user's app.
  appLayer('examples', { others: ['workers'] }),
  appLayer('workers', { others: ['examples'] }),
  appLayer('boot', { others: ['examples', 'workers'], src: ['domain/duration'] }),
);
