/**
 * The `authenticate` section's server: one process, one Mongoose connection, one Redis, several
 * guards side by side so their costs are compared in the same run. Access-token routes:
 * `/plain` (signature and expiry only), `/versions` (`checkRevocation: true`), `/sessions`
 * (`checkRevocation: { sessions: true }` with the revocation bus), `/sessions-nobus` (the same
 * without a bus: one instance, no sync round trip), `/sessions-uncached` (no caches at all: the
 * version steps and the session record read on every request). Refresh routes: `/bus/token` and
 * `/nobus/token` (the token router with and without the bus: the bus adds a sync PING in parallel
 * with the record read). Issues `SESSIONS` sessions at start and writes
 * `{ access: [...], refresh: [...] }` to `TOKENS_OUT`. Env: MONGODB_URI, REDIS_URL, PORT,
 * SESSIONS, TOKENS_OUT.
 */
import { writeFileSync } from 'node:fs';
import express, { type RequestHandler } from 'express';
import { Redis } from 'ioredis';
import mongoose from 'mongoose';
import { authenticate, createRefreshRouter } from 'refresh-rotation/express';
import { InlineTokenJobs } from 'refresh-rotation/memory';
import { MongooseRefreshTokenRepository, MongooseVersionStore } from 'refresh-rotation/mongoose';
import { RedisRevocationBus } from 'refresh-rotation/redis';
import { RotationService, type RefreshRotationOptions } from 'refresh-rotation';
import { ACCESS_SECRET, REFRESH_SECRET, serveUntilSignal } from './lib';

async function main(): Promise<void> {
  const connection = await mongoose.createConnection(process.env.MONGODB_URI!).asPromise();
  const redis = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: 1 });
  const bus = new RedisRevocationBus({ connection: redis, channel: 'rr-bench:revocations' });
  await bus.ready();
  const repository = new MongooseRefreshTokenRepository(connection);
  await repository.ensureIndexes();
  const base = (overrides: Partial<RefreshRotationOptions> = {}) =>
    new RotationService({
      repository,
      versions: new MongooseVersionStore(connection),
      jobs: new InlineTokenJobs(repository),
      accessToken: { algorithm: 'HS256', secret: ACCESS_SECRET },
      refreshToken: { secrets: [REFRESH_SECRET] },
      ...overrides,
    });
  const withBus = base({ revocationBus: bus });
  const withoutBus = base();
  const uncached = base({
    versions: new MongooseVersionStore(connection),
    revocationCache: { ttl: 0 },
  });
  const access: string[] = [];
  const refresh: string[] = [];
  for (let i = 0; i < Number(process.env.SESSIONS); i += 1) {
    const issued = await withBus.issue({ userId: `user-${i}` });
    access.push(issued.accessToken);
    refresh.push(issued.refreshToken);
  }
  writeFileSync(process.env.TOKENS_OUT!, JSON.stringify({ access, refresh }));

  const ok: RequestHandler = (_req, res) => void res.json({ ok: true });
  const quiet = { error: console.error, warn: console.warn };
  const app = express();
  app.get('/healthz', ok);
  app.get('/plain', authenticate({ service: withBus, logger: quiet }), ok);
  app.get(
    '/versions',
    authenticate({ service: withBus, checkRevocation: true, logger: quiet }),
    ok,
  );
  const sessions = { sessions: true };
  app.get('/sessions', authenticate({ service: withBus, checkRevocation: sessions }), ok);
  app.get('/sessions-nobus', authenticate({ service: withoutBus, checkRevocation: sessions }), ok);
  app.get('/sessions-uncached', authenticate({ service: uncached, checkRevocation: sessions }), ok);
  app.use('/bus', createRefreshRouter({ service: withBus, logger: quiet }));
  app.use('/nobus', createRefreshRouter({ service: withoutBus, logger: quiet }));
  serveUntilSignal(app, async () => {
    await bus.close();
    redis.disconnect();
    await connection.close();
  });
}

void main();
