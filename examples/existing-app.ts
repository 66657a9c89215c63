// Mount refresh-rotation in an existing Express app (docs/express.md shows this file; the package
// tests compile it as CommonJS and as an ES module against the packed package, and run it).
// Environment: MONGODB_URI, REDIS_URL, QUEUE_PREFIX, ACCESS_TOKEN_SECRET, REFRESH_TOKEN_SECRETS, PORT.
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import express from 'express';
import mongoose from 'mongoose';
import { RotationService } from 'refresh-rotation';
import { BullMQTokenJobs } from 'refresh-rotation/bullmq';
import {
  asyncHandler,
  authenticate,
  createRefreshRouter,
  errorHandler,
} from 'refresh-rotation/express';
import {
  MongooseRefreshTokenRepository,
  MongooseVersionStore,
  reopenWhenMonitorStuck,
} from 'refresh-rotation/mongoose';

async function main(): Promise<void> {
  const uri = process.env.MONGODB_URI!;
  const connection = await mongoose.createConnection(uri).asPromise();
  // Recover from a stuck driver monitor after a server restart (docs/decisions.md); optional.
  const stopWatchdog = reopenWhenMonitorStuck(connection, { uri });
  const repository = new MongooseRefreshTokenRepository(connection);
  await repository.ensureIndexes();
  // Revoke-all and last-used jobs for the worker (same REDIS_URL and QUEUE_PREFIX); omit to work inline.
  const jobs = new BullMQTokenJobs({
    connection: process.env.REDIS_URL!,
    prefix: process.env.QUEUE_PREFIX, // default {rr}
  });
  const service = new RotationService({
    repository,
    versions: new MongooseVersionStore(connection),
    jobs,
    accessToken: { secret: process.env.ACCESS_TOKEN_SECRET! }, // ≥ 32 bytes, HS256
    refreshToken: { secrets: process.env.REFRESH_TOKEN_SECRETS!.split(',') },
  });

  const app = express();
  // cookie.path: the login route below is not under the router, so it names the router's path.
  const auth = createRefreshRouter({ service, cookie: { path: '/auth' } });
  app.use('/auth', auth); // POST /auth/token, /auth/logout, /auth/logout-all, GET/DELETE /auth/sessions

  // Your login route: check the password your way, then one line.
  app.post(
    '/auth/login',
    express.json(),
    asyncHandler(async (req, res) => {
      const user = await users.checkPassword(req.body?.email, req.body?.password);
      if (!user) return void res.status(401).json({ error: 'invalid_credentials' });
      res.json(await auth.issue(res, { userId: user.id })); // a cookie if the client asked for one
    }),
  );

  // Your own protected routes.
  app.get('/me', authenticate({ service }), (req, res) => void res.json({ id: req.auth!.userId }));

  // When a password changes: every session of the user dies at once.
  app.post(
    '/auth/password',
    authenticate({ service, checkRevocation: true }),
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
    void jobs.close().then(() => connection.close());
  });
}

/** Stand-in for your user store: one user, alice@example.com / correct horse. Use bcrypt or argon2. */
const users = {
  accounts: new Map([['alice@example.com', { id: 'user-1', ...hashPassword('correct horse') }]]),
  async checkPassword(email: unknown, password: unknown): Promise<{ id: string } | null> {
    const account = typeof email === 'string' ? this.accounts.get(email) : undefined;
    if (!account || typeof password !== 'string') return null;
    const hash = scryptSync(password, account.salt, 32);
    return timingSafeEqual(hash, account.hash) ? { id: account.id } : null;
  },
  async changePassword(id: string, current: unknown, next: unknown): Promise<boolean> {
    const [email, account] = [...this.accounts].find(([, a]) => a.id === id) ?? [];
    if (!email || !account || typeof next !== 'string') return false;
    if (!(await this.checkPassword(email, current))) return false;
    this.accounts.set(email, { id, ...hashPassword(next) });
    return true;
  },
};

function hashPassword(password: string): { salt: Buffer; hash: Buffer } {
  const salt = randomBytes(16);
  return { salt, hash: scryptSync(password, salt, 32) };
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
