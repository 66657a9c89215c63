/**
 * The variables both processes, the worker (workers/env.ts) and the demo app (demo/env.ts),
 * read the same way: the services, the queues (the app produces what the worker consumes, so they
 * must agree) and the logs.
 */
import { LOG_LEVELS, type EnvReader, type LogLevel } from './env-reader';
import { LOG_FORMATS, type LogFormat } from './logging';

/** The queues, as the app (producer) and the worker (consumer) must agree on them. */
export interface QueueSettings {
  /** BullMQ key prefix; a `{hash tag}` keeps each queue in one Redis Cluster slot. */
  readonly prefix: string;
  /** Touches of one session inside this window cost one job. */
  readonly touchWindowMs: number;
}

export function readMongodbUri(reader: EnvReader): string | undefined {
  return reader.url('MONGODB_URI', ['mongodb:', 'mongodb+srv:']);
}

export function readRedisUrl(reader: EnvReader): string | undefined {
  return reader.url('REDIS_URL', ['redis:', 'rediss:']);
}

export function readLogLevel(reader: EnvReader): LogLevel {
  return reader.oneOf('LOG_LEVEL', LOG_LEVELS, 'info');
}

export function readLogFormat(reader: EnvReader): LogFormat {
  return reader.oneOf('LOG_FORMAT', LOG_FORMATS, 'auto');
}

/** `QUEUE_PREFIX` and `TOUCH_WINDOW`: read by the app and the worker alike. */
export function readQueueSettings(reader: EnvReader): QueueSettings {
  const prefix = reader.string('QUEUE_PREFIX', '{rr}');
  if (prefix.includes(':') || /\s/.test(prefix)) {
    reader.problem(
      `QUEUE_PREFIX must not contain ':' or spaces (use a hash tag such as {rr}); got ${JSON.stringify(prefix)}.`,
    );
  }
  return { prefix, touchWindowMs: reader.duration('TOUCH_WINDOW', '60s', { min: 1_000 }) };
}
