/**
 * A watchdog for the MongoDB driver's server monitor, for the owner of a Mongoose connection.
 *
 * Why: with mongodb 7.8 (Mongoose 9), when the server closes its connections (a restart), a
 * heartbeat can be requested in the moment between the monitor socket being destroyed and its
 * 'close' event. The driver then writes the `hello` to the destroyed socket, which returns
 * `false` and never emits 'drain' or 'error', and waits for the 'drain' forever: the heartbeat
 * never ends, the server stays Unknown, and every operation fails server selection until the
 * client is recreated. Our fault test (test/reliability/fault-mongo.test.ts) saw it in about one
 * restart in four under load; docs/decisions.md has the details.
 *
 * `watchServerHeartbeats` only observes the driver's public SDAM events. `reopenWhenMonitorStuck`
 * acts: it closes the connection and opens it again with the same URI and options, so models and
 * repositories built on it keep working. Only the owner of the connection should use it (the
 * adapters themselves never open or close the caller's connection).
 */
import type { Connection, ConnectOptions } from 'mongoose';
import { OptionsError } from '../../domain/errors';

function checkPositive(name: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isFinite(value) && value > 0))
    throw new OptionsError(
      `${name} must be a positive number of milliseconds; got ${String(value)}`,
    );
}

/** What the watchdog saw: a heartbeat that neither succeeded nor failed in time. */
export interface StuckHeartbeat {
  /** host:port of the server. */
  address: string;
  /** How long the heartbeat has been pending, in ms. */
  pendingMs: number;
}

export interface HeartbeatWatchOptions {
  /**
   * How long a polling heartbeat may take (ms). Default: 2 × `connectTimeoutMS` (one for the
   * connect, one for the `hello`, each bounded by it in the driver) + 1 s. Awaited (streaming)
   * heartbeats get `heartbeatFrequencyMS` more, as the server may hold them that long.
   */
  timeoutMs?: number | undefined;
  /** Called once per stuck heartbeat. */
  onStuck: (stuck: StuckHeartbeat) => void;
}

interface HeartbeatEvent {
  connectionId: string;
  awaited?: boolean | undefined;
}

const DRIVER_DEFAULTS = { connectTimeoutMS: 30_000, heartbeatFrequencyMS: 10_000 };

/** Watch the heartbeats of the connection's current client. Returns a function that stops it. */
export function watchServerHeartbeats(
  connection: Connection,
  options: HeartbeatWatchOptions,
): () => void {
  checkPositive('timeoutMs', options.timeoutMs);
  const client = connection.getClient();
  const settings = client.options as Partial<typeof DRIVER_DEFAULTS> | undefined;
  const connectTimeoutMS = settings?.connectTimeoutMS || DRIVER_DEFAULTS.connectTimeoutMS;
  const heartbeatFrequencyMS =
    settings?.heartbeatFrequencyMS || DRIVER_DEFAULTS.heartbeatFrequencyMS;
  const pollingLimit = options.timeoutMs ?? 2 * connectTimeoutMS + 1_000;
  const pending = new Map<string, { since: number; limit: number; reported: boolean }>();

  const started = (event: HeartbeatEvent) => {
    const limit = event.awaited ? pollingLimit + heartbeatFrequencyMS : pollingLimit;
    pending.set(event.connectionId, { since: Date.now(), limit, reported: false });
  };
  const ended = (event: HeartbeatEvent) => pending.delete(event.connectionId);
  client.on('serverHeartbeatStarted', started);
  client.on('serverHeartbeatSucceeded', ended);
  client.on('serverHeartbeatFailed', ended);

  const timer = setInterval(
    () => {
      const now = Date.now();
      for (const [address, heartbeat] of pending) {
        if (heartbeat.reported || now - heartbeat.since < heartbeat.limit) continue;
        heartbeat.reported = true;
        options.onStuck({ address, pendingMs: now - heartbeat.since });
      }
    },
    Math.max(50, Math.min(1_000, pollingLimit / 4)),
  );
  timer.unref();
  return () => {
    clearInterval(timer);
    client.off('serverHeartbeatStarted', started);
    client.off('serverHeartbeatSucceeded', ended);
    client.off('serverHeartbeatFailed', ended);
  };
}

/** Options of {@link reopenWhenMonitorStuck}. */
export interface ReopenOptions {
  /** The URI and options the connection was opened with (used to open it again). */
  uri: string;
  connectOptions?: ConnectOptions | undefined;
  /** See `HeartbeatWatchOptions.timeoutMs`. */
  timeoutMs?: number | undefined;
  /** Delay between attempts when opening again fails (the server may still be down). Default 1 s. */
  retryDelayMs?: number | undefined;
  /** Told when a stuck heartbeat was seen (before reopening). */
  onStuck?: ((stuck: StuckHeartbeat) => void) | undefined;
  /** Told when the connection is open again, after how many attempts. */
  onReopened?: ((attempts: number) => void) | undefined;
  /** Told of each failed close or open attempt. */
  onError?: ((error: unknown) => void) | undefined;
}

/**
 * Keep `connection` usable when the driver's monitor gets stuck: on a stuck heartbeat, close the
 * connection and open it again (retrying until it opens or `stop()` is called). Returns `stop`.
 * Call `stop()` before closing the connection yourself.
 */
export function reopenWhenMonitorStuck(connection: Connection, options: ReopenOptions): () => void {
  checkPositive('timeoutMs', options.timeoutMs);
  checkPositive('retryDelayMs', options.retryDelayMs);
  if (typeof options.uri !== 'string' || options.uri.length === 0)
    throw new OptionsError('uri must be the mongodb:// URI the connection was opened with');
  let stopped = false;
  let unwatch: (() => void) | null = null;
  let retry: NodeJS.Timeout | undefined;

  const watch = () => {
    unwatch = watchServerHeartbeats(connection, {
      timeoutMs: options.timeoutMs,
      onStuck: (stuck) => {
        if (stopped) return;
        unwatch?.();
        unwatch = null;
        options.onStuck?.(stuck);
        void reopen(1);
      },
    });
  };

  const reopen = async (attempt: number): Promise<void> => {
    if (stopped) return;
    try {
      await connection.close().catch((error: unknown) => options.onError?.(error));
      if (stopped) return;
      await connection.openUri(options.uri, options.connectOptions);
      if (stopped) return;
      watch();
      options.onReopened?.(attempt);
    } catch (error) {
      options.onError?.(error);
      if (stopped) return;
      retry = setTimeout(() => void reopen(attempt + 1), options.retryDelayMs ?? 1_000);
      retry.unref();
    }
  };

  watch();
  return () => {
    stopped = true;
    clearTimeout(retry);
    unwatch?.();
    unwatch = null;
  };
}
