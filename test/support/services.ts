/**
 * Per-test-file access to the real services started by global-setup: each file gets its own
 * database and its own queue prefix, and closes what it opens.
 */
import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import mongoose, { type Connection } from 'mongoose';

function required(name: 'MONGODB_URI' | 'REDIS_URL'): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: run this test through jest (its global setup starts the servers).`,
    );
  }
  return value;
}

/** A unique name for this test file's database or queue prefix. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

export function mongoUri(): string {
  return required('MONGODB_URI');
}

export function redisUrl(): string {
  return required('REDIS_URL');
}

/** A Mongoose connection to a fresh database; `close()` drops the database and closes. */
export async function openTestDatabase(options: mongoose.ConnectOptions = {}): Promise<{
  connection: Connection;
  dbName: string;
  close(): Promise<void>;
}> {
  const dbName = uniqueName('rr_test');
  const connection = mongoose.createConnection(mongoUri(), {
    dbName,
    serverSelectionTimeoutMS: 5_000,
    ...options,
  });
  await connection.asPromise();
  let closing: Promise<void> | undefined;
  return {
    connection,
    dbName,
    close: () =>
      (closing ??= (async () => {
        await connection.dropDatabase().catch(() => undefined);
        await connection.close();
      })()),
  };
}

/** An ioredis client for the test Redis, with BullMQ's required `maxRetriesPerRequest: null`. */
export function openTestRedis(options: RedisOptions = {}): Redis {
  return new Redis(redisUrl(), { maxRetriesPerRequest: null, ...options });
}
