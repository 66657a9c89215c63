// Mount refresh-rotation in an existing Express app (docs/express.md shows this file; the package
// tests compile it as CommonJS and as an ES module against the packed package, and run it).
// Environment: MONGODB_URI, REDIS_URL, QUEUE_PREFIX, ACCESS_TOKEN_SECRET, REFRESH_TOKEN_SECRETS, PORT,
// ISSUER (this server's URL; default http://localhost:PORT).
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import express from 'express';
import mongoose from 'mongoose';
import { Redis } from 'ioredis';
import { isRefreshRotationError, RotationService } from 'refresh-rotation';
import { BullMQTokenJobs } from 'refresh-rotation/bullmq';
import {
  asyncHandler,
  authenticate,
  authorizationServerMetadata,
  createRefreshRouter,
  errorHandler,
} from 'refresh-rotation/express';
import {
  MongooseRefreshTokenRepository,
  MongooseVersionStore,
  reopenWhenMonitorStuck,
} from 'refresh-rotation/mongoose';
import { RedisRevocationBus } from 'refresh-rotation/redis';

async function main(): Promise<void> {
  const uri = required('MONGODB_URI');
  // Fail in seconds, not a minute, when MongoDB is down or hangs: the refresh then answers 503.
  const timeouts = {
    serverSelectionTimeoutMS: 2_000,
    connectTimeoutMS: 2_000,
    socketTimeoutMS: 10_000,
  };
  const connection = await mongoose.createConnection(uri, timeouts).asPromise();
  // Recover from a stuck driver monitor after a server restart (docs/decisions.md); optional.
  const stopWatchdog = reopenWhenMonitorStuck(connection, { uri });
  const repository = new MongooseRefreshTokenRepository(connection);
  await repository.ensureIndexes();
  // Revoke-all and last-used jobs for the worker (same REDIS_URL and QUEUE_PREFIX); omit to work inline.
  const jobs = new BullMQTokenJobs({
    connection: required('REDIS_URL'),
    prefix: process.env.QUEUE_PREFIX, // default {rr}
  });
  // Several app instances: every revocation reaches every instance's caches before it is answered.
  // Until it is subscribed (or while Redis is down) cached versions live 1 s instead of 5: no wait.
  const redis = new Redis(required('REDIS_URL'), { maxRetriesPerRequest: 1 });
  redis.on('error', (error) => console.error('redis:', error.message)); // ioredis retries by itself
  const revocationBus = new RedisRevocationBus({ connection: redis }); // omit with one instance
  const issuer = process.env.ISSUER ?? `http://localhost:${process.env.PORT ?? 3000}`;
  const service = new RotationService({
    repository,
    versions: new MongooseVersionStore(connection),
    jobs,
    revocationBus,
    accessToken: { secret: required('ACCESS_TOKEN_SECRET'), issuer }, // ≥ 32 bytes, HS256
    refreshToken: { secrets: required('REFRESH_TOKEN_SECRETS').split(',') },
  });

  const app = express();
  // cookie.path: the login route below is not under the router, so it names the router's path.
  const auth = createRefreshRouter({ service, cookie: { path: '/auth' } });
  app.use('/auth', auth); // POST /auth/token, /auth/logout, /auth/revoke, /auth/logout-all, /auth/sessions

  // OAuth clients find the endpoints from the issuer (RFC 8414), at the host's root.
  const metadata = authorizationServerMetadata({
    issuer, // the access tokens' `iss` too
    tokenEndpoint: '/auth/token',
    revocationEndpoint: '/auth/revoke',
  });
  app.get(metadata.path, metadata.handler); // /.well-known/oauth-authorization-server

  // Your login route: snapshot the user's version before the password hash is read, then issue at
  // it, so a login that races a password change does not outlive it (docs/express.md).
  app.post(
    '/auth/login',
    express.json(),
    asyncHandler(async (req, res) => {
      const refuse = () => void res.status(401).json({ error: 'invalid_credentials' });
      const userId = users.idOf(req.body?.email);
      if (!userId) return refuse(); // a real app spends a password hash here too, to take as long
      const at = await service.versionSnapshot(userId);
      if (!(await users.checkPassword(userId, req.body?.password))) return refuse();
      try {
        res.json(await auth.issue(res, { userId, at })); // a cookie if the client asked for one
      } catch (error) {
        // invalid_grant: the password changed during the check; answer as for a wrong password.
        if (isRefreshRotationError(error) && error.code === 'invalid_grant') return refuse();
        throw error;
      }
    }),
  );

  // Your own protected routes: stateless, or refusing signed-out sessions at once where it matters.
  app.get('/me', authenticate({ service }), (req, res) => void res.json({ id: req.auth!.userId }));

  // When a password changes: store the new hash, then every session of the user dies at once.
  app.post(
    '/auth/password',
    authenticate({ service, checkRevocation: { sessions: true } }),
    express.json(),
    asyncHandler(async (req, res) => {
      const userId = req.auth!.userId;
      if (!(await users.changePassword(userId, req.body?.current, req.body?.next))) {
        return void res.status(403).json({ error: 'invalid_credentials' });
      }
      await service.revokeAllForUser(userId, 'password_changed');
      res.status(204).end();
    }),
  );

  app.use(errorHandler()); // answer library errors from your routes the way the router does

  const server = app.listen(Number(process.env.PORT ?? 3000), () =>
    console.log(`listening on http://localhost:${process.env.PORT ?? 3000}`),
  );
  process.once('SIGTERM', () => {
    server.close();
    stopWatchdog();
    void Promise.all([jobs.close(), revocationBus.close()])
      .then(() => Promise.all([redis.quit(), connection.close()]))
      .catch((error: unknown) => console.error(error));
  });
}

/** Stand-in for your user store: one user, alice@example.com / correct horse. Use bcrypt or argon2. */
const users = {
  accounts: new Map([['alice@example.com', { id: 'user-1', ...hashPassword('correct horse') }]]),
  idOf(email: unknown): string | null {
    return (typeof email === 'string' && this.accounts.get(email)?.id) || null;
  },
  /** Reads the stored hash now: after the login's version snapshot. */
  async checkPassword(id: string, password: unknown): Promise<boolean> {
    const account = [...this.accounts.values()].find((a) => a.id === id);
    if (!account || typeof password !== 'string') return false;
    return timingSafeEqual(scryptSync(password, account.salt, 32), account.hash);
  },
  async changePassword(id: string, current: unknown, next: unknown): Promise<boolean> {
    const email = [...this.accounts].find(([, a]) => a.id === id)?.[0];
    if (!email || typeof next !== 'string') return false;
    if (!(await this.checkPassword(id, current))) return false;
    this.accounts.set(email, { id, ...hashPassword(next) });
    return true;
  },
};

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (see the list at the top of this file)`);
  return value;
}

function hashPassword(password: string): { salt: Buffer; hash: Buffer } {
  const salt = randomBytes(16);
  return { salt, hash: scryptSync(password, salt, 32) };
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
