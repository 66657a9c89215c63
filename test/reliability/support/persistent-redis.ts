/**
 * A redis-server with append-only persistence (fsync on every write) in a directory the test owns,
 * so it can be stopped and started again on the same port with its data: queued jobs survive the
 * restart as they do on a production Redis with AOF. (test/support/servers.ts starts Redis
 * without persistence, which is right for every other test.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';

export interface PersistentRedis {
  readonly url: string;
  readonly port: number;
  /** SIGTERM (Redis flushes the AOF), resolves on exit. */
  stop(): Promise<void>;
  /** Start again on the same port and directory. */
  start(): Promise<void>;
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`redis-server exited with code ${child.exitCode} at start`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server did not listen on ${port} within ${timeoutMs} ms`);
}

export async function startPersistentRedis(port: number, dir: string): Promise<PersistentRedis> {
  let child: ChildProcess | null = null;
  const start = async () => {
    child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--maxmemory-policy',
        'noeviction',
      ],
      { stdio: 'ignore' },
    );
    await waitForPort(port, child, 10_000);
  };
  const stop = () =>
    new Promise<void>((resolve) => {
      const running = child;
      if (!running || running.exitCode !== null || running.signalCode !== null) return resolve();
      const killTimer = setTimeout(() => running.kill('SIGKILL'), 5_000);
      running.once('exit', () => {
        clearTimeout(killTimer);
        resolve();
      });
      running.kill('SIGTERM');
    });
  await start();
  return { url: `redis://127.0.0.1:${port}`, port, stop, start };
}
