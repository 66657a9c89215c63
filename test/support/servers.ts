/**
 * Real servers for the tests (README, "Tests against real services"): redis-server from PATH, and a
 * MongoDB-wire server (mongod from PATH if there is one, else FerretDB v1 on SQLite built from our
 * small Go main). Each start returns a handle that stops the server and removes its files.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait-for';

export interface ServerHandle {
  /** Connection string (redis://… or mongodb://…). */
  url: string;
  port: number;
  /** Human-readable name and version, e.g. "redis-server 7.0.15". */
  description: string;
  /** "running (pid N)", or how the process ended: for failure messages. */
  state(): string;
  /** The last few kilobytes the server printed (stdout and stderr): for failure messages. */
  output(): string;
  /** Stop the server (SIGTERM, then SIGKILL) and remove its data directory. Idempotent. */
  stop(): Promise<void>;
}

const FERRETDB_SOURCE = join(__dirname, 'ferretdb');
export const FERRETDB_VERSION = 'v1.24.2';

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function onPath(command: string): string | null {
  try {
    return execFileSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

export async function waitForPort(
  port: number,
  child: ChildProcess,
  name: string,
  timeoutMs: number,
) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`${name} exited with code ${child.exitCode} at start`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) {
      // A server that cannot bind exits at once; if the port answers while ours died, it is someone else's.
      await new Promise((r) => setTimeout(r, 250));
      if (child.exitCode !== null)
        throw new Error(
          `${name} exited with code ${child.exitCode} at start, and another process answers on port ${port}`,
        );
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${name} did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

const OUTPUT_KEPT = 16_384;

export function handleFor(
  child: ChildProcess,
  ownedDir: string | null,
  fields: Omit<ServerHandle, 'stop' | 'state' | 'output'>,
): ServerHandle {
  let printed = '';
  const keep = (chunk: Buffer) => {
    printed = (printed + chunk.toString('utf8')).slice(-OUTPUT_KEPT);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let killed = false;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(killTimer);
        if (ownedDir) rmSync(ownedDir, { recursive: true, force: true });
        resolve();
      };
      if (child.exitCode !== null || child.signalCode !== null) return done();
      const killTimer = setTimeout(() => {
        killed = true;
        child.kill('SIGKILL');
      }, 5_000);
      child.once('exit', done);
      child.kill('SIGTERM');
    }));
  const state = () =>
    child.exitCode !== null || child.signalCode !== null
      ? `exited (code ${child.exitCode}, signal ${child.signalCode}${killed ? ', SIGKILL after SIGTERM timed out' : ''})`
      : `running (pid ${child.pid})`;
  return { ...fields, state, output: () => printed, stop };
}

/**
 * Start redis-server on a free (or the given) port with `noeviction` (BullMQ needs it). No
 * persistence by default. With `appendOnly`, every write is fsynced to an append-only file in `dir`
 * (the caller then owns `dir`), so a restart on the same port and directory keeps the queued jobs,
 * as a production Redis with AOF does.
 */
export async function startRedis(
  options: { port?: number; dir?: string; appendOnly?: boolean } = {},
): Promise<ServerHandle> {
  const binary = onPath('redis-server');
  if (!binary) {
    throw new Error(
      'redis-server not found on PATH. Install it (Debian/Ubuntu: apt-get install -y redis-server) ' +
        'or set REDIS_URL to a running Redis (docker compose up -d redis).',
    );
  }
  const version = /v=([\d.]+)/.exec(execFileSync(binary, ['--version'], { encoding: 'utf8' }))?.[1];
  const port = options.port ?? (await freePort());
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'rr-redis-'));
  const persistence = options.appendOnly
    ? ['--appendonly', 'yes', '--appendfsync', 'always']
    : ['--appendonly', 'no'];
  const child = spawn(
    binary,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      ...persistence,
      '--maxmemory-policy',
      'noeviction',
      '--dir',
      dir,
    ],
    { stdio: 'ignore' },
  );
  await waitForPort(port, child, 'redis-server', 10_000);
  return handleFor(child, options.dir ? null : dir, {
    url: `redis://127.0.0.1:${port}`,
    port,
    description: `redis-server ${version ?? '(unknown version)'}`,
  });
}

/** Path of the cached FerretDB test binary; built from test/support/ferretdb with `go build` if missing. */
export function ferretDbBinary(): string {
  const digest = createHash('sha256')
    .update(readFileSync(join(FERRETDB_SOURCE, 'go.mod')))
    .update(readFileSync(join(FERRETDB_SOURCE, 'go.sum')))
    .update(readFileSync(join(FERRETDB_SOURCE, 'main.go')))
    .digest('hex')
    .slice(0, 12);
  const cacheDir = join(
    process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'),
    'refresh-rotation',
  );
  const binary = join(cacheDir, `ferretdb-${FERRETDB_VERSION}-${digest}`);
  if (existsSync(binary)) return binary;
  if (!onPath('go')) {
    throw new Error(
      'No MongoDB-wire server: mongod is not on PATH, MONGODB_URI is not set, and Go is missing to ' +
        'build the FerretDB test server. Install Go (https://go.dev/dl, or apt-get install -y golang), ' +
        'or set MONGODB_URI (docker compose up -d mongo).',
    );
  }
  mkdirSync(cacheDir, { recursive: true });
  console.log(`Building FerretDB ${FERRETDB_VERSION} test server (first run only, a few minutes)…`);
  execFileSync('go', ['build', '-o', binary, '.'], { cwd: FERRETDB_SOURCE, stdio: 'inherit' });
  return binary;
}

/**
 * Start a MongoDB-wire server: mongod from PATH if present, else FerretDB on SQLite. Pass `dir` to
 * keep the data across a stop and a restart (the caller then owns and removes it).
 */
export async function startMongo(
  options: { port?: number; dir?: string } = {},
): Promise<ServerHandle> {
  const port = options.port ?? (await freePort());
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'rr-mongo-'));
  mkdirSync(dir, { recursive: true });
  const mongod = onPath('mongod');
  let child: ChildProcess;
  let description: string;
  if (mongod) {
    const version = /db version v([\d.]+)/.exec(
      execFileSync(mongod, ['--version'], { encoding: 'utf8' }),
    )?.[1];
    description = `mongod ${version ?? '(unknown version)'}`;
    child = spawn(mongod, ['--port', String(port), '--bind_ip', '127.0.0.1', '--dbpath', dir], {
      stdio: 'ignore',
    });
  } else {
    const binary = ferretDbBinary();
    description = `FerretDB ${FERRETDB_VERSION} (SQLite backend)`;
    child = spawn(binary, ['-listen', `127.0.0.1:${port}`, '-dir', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }
  await waitForPort(port, child, description, 30_000);
  return handleFor(child, options.dir ? null : dir, {
    url: `mongodb://127.0.0.1:${port}`,
    port,
    description,
  });
}

/** A server of one test's own whose data outlives `stop()`, for outage tests. */
export interface RestartableServer extends ServerHandle {
  /** Start it again after `stop()`, on the same port and data. */
  restart(): Promise<void>;
  /** Stop it (if running) and remove its data. Idempotent. */
  remove(): Promise<void>;
}

/**
 * Start a MongoDB-wire server (`mongo`) or a Redis with an append-only file (`redis`) in a
 * temporary directory of its own, so a test can stop it and `restart()` it on the same port and data.
 */
export async function startRestartable(kind: 'mongo' | 'redis'): Promise<RestartableServer> {
  const dir = mkdtempSync(join(tmpdir(), `rr-${kind}-restartable-`));
  const start = (port?: number) =>
    kind === 'mongo' ? startMongo({ dir, port }) : startRedis({ dir, appendOnly: true, port });
  let current = await start().catch((error: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  let removing: Promise<void> | undefined;
  return {
    get url() {
      return current.url;
    },
    get port() {
      return current.port;
    },
    get description() {
      return current.description;
    },
    state: () => current.state(),
    output: () => current.output(),
    stop: () => current.stop(),
    async restart() {
      current = await start(current.port);
    },
    remove: () =>
      (removing ??= (async () => {
        await current.stop();
        rmSync(dir, { recursive: true, force: true });
      })()),
  };
}

/** A local Redis Cluster: its masters' ports, and `stop()` for all of them. */
export interface RedisClusterHandle {
  nodes: Array<{ host: string; port: number }>;
  description: string;
  /** Stop every node (SIGTERM to its process group, SIGKILL after 5 s) and remove the data. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Start a Redis Cluster of `masters` nodes without replicas on free ports in a temporary directory
 * (no persistence, `noeviction` as BullMQ needs), join them with `redis-cli --cluster create` and
 * wait until every node reports `cluster_state:ok`. Each node runs in its own process group.
 */
export async function startRedisCluster(masters = 3): Promise<RedisClusterHandle> {
  const binary = onPath('redis-server');
  const cli = onPath('redis-cli');
  if (!binary || !cli) {
    throw new Error(
      'redis-server and redis-cli are needed for the Redis Cluster test. Install them ' +
        '(Debian/Ubuntu: apt-get install -y redis-server redis-tools).',
    );
  }
  const version = /v=([\d.]+)/.exec(execFileSync(binary, ['--version'], { encoding: 'utf8' }))?.[1];
  const dir = mkdtempSync(join(tmpdir(), 'rr-redis-cluster-'));
  const children: ChildProcess[] = [];
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await Promise.all(children.map((child) => stopGroup(child)));
      rmSync(dir, { recursive: true, force: true });
    })());
  try {
    const ports: number[] = [];
    for (let index = 0; index < masters; index += 1) {
      const port = await freePort();
      const nodeDir = join(dir, String(port));
      mkdirSync(nodeDir);
      const child = spawn(
        binary,
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(nodeDir, 'nodes.conf'),
          '--cluster-node-timeout',
          '5000',
          '--save',
          '',
          '--appendonly',
          'no',
          '--maxmemory-policy',
          'noeviction',
          '--dir',
          nodeDir,
        ],
        { stdio: 'ignore', detached: true },
      );
      children.push(child);
      await waitForPort(port, child, `redis-server (cluster node ${index + 1})`, 10_000);
      ports.push(port);
    }
    execFileSync(
      cli,
      [
        '--cluster',
        'create',
        ...ports.map((port) => `127.0.0.1:${port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { stdio: 'pipe', timeout: 30_000 },
    );
    for (const port of ports) {
      await waitFor(
        () => execFileSync(cli, ['-p', String(port), 'cluster', 'info'], { encoding: 'utf8' }),
        {
          what: `Redis Cluster node ${port} to report cluster_state:ok`,
          until: (info) => info.includes('cluster_state:ok'),
          timeoutMs: 20_000,
          intervalMs: 100,
        },
      );
    }
    return {
      nodes: ports.map((port) => ({ host: '127.0.0.1', port })),
      description: `Redis Cluster of ${masters} masters (redis-server ${version ?? 'unknown'})`,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** SIGTERM to the child's process group, SIGKILL after 5 s; resolves when it exited. */
function stopGroup(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
      resolve();
      return;
    }
    const signal = (name: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, name);
      } catch {
        // already gone
      }
    };
    const killTimer = setTimeout(() => signal('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(killTimer);
      resolve();
    });
    signal('SIGTERM');
  });
}
