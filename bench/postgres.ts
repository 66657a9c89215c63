/**
 * The benchmarks' default MongoDB-wire server: FerretDB v1.24.2 (our test binary,
 * test/support/ferretdb, `-handler postgresql`) on a throwaway PostgreSQL cluster in a temp dir, on
 * free loopback ports. FerretDB pushes equality filters down as `_jsonb->'field' @> '<json>'`,
 * which its own btree indexes cannot serve: `addLookupIndexes` adds GIN `jsonb_path_ops` indexes
 * on the lookup fields directly in PostgreSQL (invisible to FerretDB and to our code), so that
 * lookups are index probes instead of scans. See docs/benchmarks.md.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  appendFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FERRETDB_VERSION,
  ferretDbBinary,
  freePort,
  handleFor,
  waitForPort,
  type ServerHandle,
} from '../test/support/servers';

/** Fields our refresh path and worker look records up by (all equality filters). */
export const LOOKUP_FIELDS = ['_id', 'id', 'tokenHash', 'userId'] as const;

/** A benchmark's MongoDB-wire server; FerretDB on PostgreSQL can also add GIN lookup indexes. */
export type BenchMongo = ServerHandle & {
  addLookupIndexes?: (database: string, collection: string) => void;
  /** Root process ids of the database's processes by name, for CPU accounting (bench/lib.ts). */
  processes?: () => Record<string, number>;
};

export interface PostgresFerretHandle extends ServerHandle {
  /** PostgreSQL URL of the database FerretDB stores everything in. */
  postgresUrl: string;
  /** GIN indexes on LOOKUP_FIELDS of the table backing `<database>.<collection>`, then ANALYZE. */
  addLookupIndexes(database: string, collection: string): void;
  /** FerretDB's pid and PostgreSQL's postmaster pid (its backends are the postmaster's children). */
  processes(): Record<string, number>;
}

function postgresBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (!versions.length) {
    throw new Error(
      'PostgreSQL is not installed (no /usr/lib/postgresql/<version>/bin/initdb). Install it with ' +
        '`apt-get install -y postgresql`, or run with --backend=sqlite, or set MONGODB_URI.',
    );
  }
  return join(root, versions[0]!, 'bin');
}

export async function startPostgresFerret(): Promise<PostgresFerretHandle> {
  const bin = postgresBin();
  const asRoot = process.getuid?.() === 0;
  // initdb and postgres refuse to run as root: run them as the `postgres` user.
  const run = (command: string, args: string[]) =>
    execFileSync(
      asRoot ? 'runuser' : command,
      asRoot ? ['-u', 'postgres', '--', command, ...args] : args,
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
  const version =
    /\(PostgreSQL\) ([\d.]+)/.exec(
      execFileSync(join(bin, 'postgres'), ['--version'], { encoding: 'utf8' }),
    )?.[1] ?? '?';
  const dir = mkdtempSync(join(tmpdir(), 'rr-pg-'));
  const data = join(dir, 'data');
  const socket = join(dir, 'sock');
  mkdirSync(socket);
  chmodSync(dir, 0o755);
  if (asRoot) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  const pgPort = await freePort();
  const postgresUrl = `postgres://postgres@127.0.0.1:${pgPort}/ferretdb`;
  const psql = (database: string, sql: string) =>
    execFileSync(
      join(bin, 'psql'),
      [
        '-X',
        '-q',
        '-At',
        '-v',
        'ON_ERROR_STOP=1',
        '-h',
        '127.0.0.1',
        '-p',
        String(pgPort),
        '-U',
        'postgres',
        '-d',
        database,
        '-c',
        sql,
      ],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    ).trim();
  let started = false;
  const stopPostgres = () => {
    if (started) {
      try {
        run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop']);
      } catch {
        // already stopped
      }
      started = false;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    run(join(bin, 'initdb'), [
      '-D',
      data,
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
      '--locale=C.UTF-8',
    ]);
    appendFileSync(
      join(data, 'postgresql.conf'),
      [
        "listen_addresses = '127.0.0.1'",
        `port = ${pgPort}`,
        `unix_socket_directories = '${socket}'`,
        // FerretDB's pgx pool runs each statement of a bulkWrite on its own connection: it
        // deadlocks when statements × concurrent commands exceed the pool (pool_max_conns below).
        'max_connections = 300',
        'shared_buffers = 512MB',
        'work_mem = 16MB',
        'maintenance_work_mem = 256MB',
        '',
      ].join('\n'),
    );
    run(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'postgres.log'), '-w', 'start']);
    started = true;
    psql('postgres', 'CREATE DATABASE ferretdb');
  } catch (error) {
    stopPostgres();
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`PostgreSQL ${version} did not start: ${(error as Error).message}\n${stderr}`, {
      cause: error,
    });
  }
  const port = await freePort();
  const child = spawn(
    ferretDbBinary(),
    [
      '-listen',
      `127.0.0.1:${port}`,
      '-handler',
      'postgresql',
      '-postgresql-url',
      `${postgresUrl}?pool_max_conns=250`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const description = `FerretDB ${FERRETDB_VERSION} on PostgreSQL ${version} with GIN lookup indexes`;
  const ferret = handleFor(child, null, { url: `mongodb://127.0.0.1:${port}`, port, description });
  try {
    await waitForPort(port, child, description, 30_000);
  } catch (error) {
    await ferret.stop();
    stopPostgres();
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return {
    ...ferret,
    postgresUrl,
    stop: () => (stopping ??= ferret.stop().then(() => stopPostgres())),
    processes: () => ({
      FerretDB: child.pid ?? 0,
      PostgreSQL: Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]),
    }),
    addLookupIndexes(database: string, collection: string): void {
      const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;
      const literal = (value: string) => `'${value.replace(/'/g, "''")}'`;
      const table = psql(
        'ferretdb',
        `SELECT _jsonb->>'table' FROM ${ident(database)}._ferretdb_database_metadata WHERE _jsonb->>'_id' = ${literal(collection)}`,
      );
      if (!table) throw new Error(`no PostgreSQL table backs ${database}.${collection}`);
      for (const field of LOOKUP_FIELDS) {
        const index = ident(
          `rr_gin_${table}_${field.replace(/_/g, '').toLowerCase()}`.slice(0, 63),
        );
        psql(
          'ferretdb',
          `CREATE INDEX IF NOT EXISTS ${index} ON ${ident(database)}.${ident(table)} USING gin ((_jsonb->${literal(field)}) jsonb_path_ops)`,
        );
      }
      psql('ferretdb', `ANALYZE ${ident(database)}.${ident(table)}`);
    },
  };
}
