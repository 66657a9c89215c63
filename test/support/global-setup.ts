/**
 * Jest global setup for the suites that need real services: use REDIS_URL / MONGODB_URI when set,
 * else start redis-server and a MongoDB-wire server on free ports. Fails (never skips) when a
 * server cannot be had; the error says what to install.
 */
import { Redis } from 'ioredis';
import mongoose from 'mongoose';
import { startMongo, startRedis, type ServerHandle } from './servers';

declare global {
  var __RR_SERVERS__: ServerHandle[] | undefined;
}

async function describeRedis(url: string): Promise<string> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  try {
    await client.connect();
    const info = await client.info('server');
    return `Redis ${/redis_version:(\S+)/.exec(info)?.[1] ?? '?'} at ${url}`;
  } catch (error) {
    throw new Error(
      `REDIS_URL=${url} is not reachable (${String(error)}). Start Redis or unset REDIS_URL.`,
      {
        cause: error,
      },
    );
  } finally {
    client.disconnect();
  }
}

async function describeMongo(url: string): Promise<string> {
  const connection = mongoose.createConnection(url, { serverSelectionTimeoutMS: 5_000 });
  try {
    await connection.asPromise();
    const info = await connection.db!.admin().command({ buildInfo: 1 });
    const ferret = info.ferretdbVersion ? ' (FerretDB)' : '';
    return `MongoDB-wire ${info.version}${ferret} at ${url.replace(/\/\/[^@/]*@/, '//***@')}`;
  } catch (error) {
    throw new Error(
      `MONGODB_URI=${url} is not reachable (${String(error)}). Start MongoDB or unset MONGODB_URI.`,
      { cause: error },
    );
  } finally {
    await connection.close();
  }
}

export default async function globalSetup(): Promise<void> {
  const started: ServerHandle[] = [];
  globalThis.__RR_SERVERS__ = started;
  const redis = process.env.REDIS_URL
    ? { url: process.env.REDIS_URL, note: 'from REDIS_URL' }
    : await startRedis().then(
        (s) => (started.push(s), { url: s.url, note: `started ${s.description}` }),
      );
  const mongo = process.env.MONGODB_URI
    ? { url: process.env.MONGODB_URI, note: 'from MONGODB_URI' }
    : await startMongo().then(
        (s) => (started.push(s), { url: s.url, note: `started ${s.description}` }),
      );
  process.env.REDIS_URL = redis.url;
  process.env.MONGODB_URI = mongo.url;
  process.env.RR_TEST_SERVICES = '1';
  const [redisLine, mongoLine] = await Promise.all([
    describeRedis(redis.url),
    describeMongo(mongo.url),
  ]);
  console.log(`\nTest services: ${redisLine} (${redis.note}); ${mongoLine} (${mongo.note})`);
}
