/**
 * The package's entry points are written down in five places: package.json `exports` (what Node
 * resolves), its `typesVersions` (what TypeScript's `node10` resolution reads), the tsup entries
 * (what gets built), tsconfig.json `paths` and jest's `moduleNameMapper` (how the bin, the demo and
 * the tests import `refresh-rotation/*` from src/). A subpath added to one and forgotten in another
 * builds, type-checks and passes most tests, then fails for a user. This holds them together:
 * every subpath of `exports` is in each of the others, naming the same file, and none has more.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { library } from '../../tsup.config';

// The entries are plain data; tsup itself (esbuild and all) is not needed to read them.
jest.mock('tsup', () => ({ defineConfig: (config: unknown) => config }));

const ROOT = join(__dirname, '..', '..');
const readJson = (file: string) => JSON.parse(readFileSync(join(ROOT, file), 'utf8')) as unknown;

interface ConditionalExport {
  import: { types: string; default: string };
  require: { types: string; default: string };
}
const manifest = readJson('package.json') as {
  main: string;
  module: string;
  types: string;
  exports: Record<string, ConditionalExport | string>;
  typesVersions: { '*': Record<string, string[]> };
};
const tsconfig = readJson('tsconfig.json') as {
  compilerOptions: { paths: Record<string, string[]> };
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const jestConfig = require('../../jest.config.js') as {
  projects: Array<{ displayName: string; moduleNameMapper: Record<string, string> }>;
};

/** One entry point: its import specifier, its build output (without extension) and its source. */
interface EntryPoint {
  /** `.` or `./memory`, as in `exports`. */
  subpath: string;
  /** `refresh-rotation` or `refresh-rotation/memory`, as code imports it. */
  specifier: string;
  /** `adapters/memory/index`: dist/ file of the entry, without extension (the tsup entry name). */
  output: string;
}

/** The entry points `exports` declares; `./package.json` is a file, not an entry point. */
const entryPoints: EntryPoint[] = Object.entries(manifest.exports)
  .filter(([subpath]) => subpath !== './package.json')
  .map(([subpath, target]) => ({
    subpath,
    specifier: `refresh-rotation${subpath.slice(1)}`,
    output: outputOf(target),
  }));

function outputOf(target: ConditionalExport | string): string {
  const file = typeof target === 'string' ? target : target.require.default;
  const match = /^\.\/dist\/(.+)\.js$/.exec(file);
  if (!match) throw new Error(`exports target ${file} is not ./dist/<entry>.js`);
  return match[1]!;
}

/** Where jest's mapper sends `specifier`, with `<rootDir>` dropped; every matching rule is listed. */
function jestTargets(mapper: Record<string, string>, specifier: string): string[] {
  return Object.entries(mapper)
    .filter(([pattern]) => new RegExp(pattern).test(specifier))
    .map(([pattern, target]) =>
      specifier.replace(new RegExp(pattern), target).replace('<rootDir>/', ''),
    );
}

const sourceOf = (entry: EntryPoint) => library[entry.output as keyof typeof library] as string;

describe('the entry points are the same in all five lists', () => {
  it('exports declares the root entry and the subpaths, each in both formats with its types', () => {
    expect(entryPoints.map((entry) => entry.subpath)).toContain('.');
    for (const { subpath, output } of entryPoints) {
      expect([subpath, manifest.exports[subpath]]).toEqual([
        subpath,
        {
          import: { types: `./dist/${output}.d.mts`, default: `./dist/${output}.mjs` },
          require: { types: `./dist/${output}.d.ts`, default: `./dist/${output}.js` },
        },
      ]);
    }
  });

  it('main, module and types point at the root entry of exports', () => {
    const root = manifest.exports['.'] as ConditionalExport;
    expect([manifest.main, manifest.module, manifest.types]).toEqual([
      root.require.default,
      root.import.default,
      root.require.types,
    ]);
  });

  it('typesVersions lists every subpath with its CommonJS types, and nothing else', () => {
    const expected = Object.fromEntries(
      entryPoints
        .filter((entry) => entry.subpath !== '.')
        .map((entry) => [entry.subpath.slice(2), [`./dist/${entry.output}.d.ts`]]),
    );
    expect(manifest.typesVersions['*']).toEqual(expected);
  });

  it('tsup builds every entry point, and nothing else, from a source file that exists', () => {
    expect(Object.keys(library).sort()).toEqual(entryPoints.map((entry) => entry.output).sort());
    for (const entry of entryPoints) expect(existsSync(join(ROOT, sourceOf(entry)))).toBe(true);
  });

  it('tsconfig.json paths map every entry point to the file tsup builds it from, and nothing else', () => {
    const expected = Object.fromEntries(
      entryPoints.map((entry) => [entry.specifier, [`./${sourceOf(entry)}`]]),
    );
    expect(tsconfig.compilerOptions.paths).toEqual(expected);
  });

  it("jest's moduleNameMapper sends every entry point to that file by exactly one rule, in every project", () => {
    for (const project of jestConfig.projects) {
      for (const entry of entryPoints) {
        expect([
          project.displayName,
          entry.specifier,
          jestTargets(project.moduleNameMapper, entry.specifier),
        ]).toEqual([project.displayName, entry.specifier, [sourceOf(entry)]]);
      }
    }
  });

  it("jest's moduleNameMapper has no rule that matches no entry point", () => {
    for (const project of jestConfig.projects) {
      const unused = Object.keys(project.moduleNameMapper).filter(
        (pattern) => !entryPoints.some((entry) => new RegExp(pattern).test(entry.specifier)),
      );
      expect([project.displayName, unused]).toEqual([project.displayName, []]);
    }
  });

  it('a specifier that is not an entry point maps nowhere', () => {
    for (const project of jestConfig.projects) {
      expect(jestTargets(project.moduleNameMapper, 'refresh-rotation/domain/duration')).toEqual([]);
    }
  });
});
