/**
 * The product without the demo app's middleware: a bare Express app with only the token router
 * (`createRefreshRouter`) on `RotationService`, the Mongoose adapter and version store, and inline
 * jobs (a refresh enqueues nothing). Used to split the full stack / floor gap into what the example
 * app adds (helmet, request logs, rate limit) and what the library does. Env: MONGODB_URI, PORT,
 * REVOCATION_GUARD (auto | off; `off` on FerretDB is for measuring only: it is what MongoDB runs).
 */
import mongoose from 'mongoose';
import { InlineTokenJobs } from 'refresh-rotation/memory';
import {
  MongooseRefreshTokenRepository,
  MongooseVersionStore,
  type RevocationGuardMode,
} from 'refresh-rotation/mongoose';
import { RotationService } from 'refresh-rotation';
import { ACCESS_SECRET, REFRESH_SECRET, serveUntilSignal } from './lib';
import { tokenRouterApp } from './token-router-app';

async function main(): Promise<void> {
  const connection = await mongoose.createConnection(process.env.MONGODB_URI!).asPromise();
  const repository = new MongooseRefreshTokenRepository(connection, {
    revocationGuard: (process.env.REVOCATION_GUARD ?? 'auto') as RevocationGuardMode,
  });
  const service = new RotationService({
    repository,
    versions: new MongooseVersionStore(connection),
    jobs: new InlineTokenJobs(repository),
    accessToken: { algorithm: 'HS256', secret: ACCESS_SECRET },
    refreshToken: { secrets: [REFRESH_SECRET] },
  });
  serveUntilSignal(tokenRouterApp(service), () => connection.close());
}

void main();
