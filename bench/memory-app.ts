/**
 * The demo app (demo/app.ts: helmet, request logs at info, rate limit, router, service) on
 * the in-memory adapters, with `SESSIONS` sessions issued in-process and their tokens written to
 * `TOKENS_OUT`. No database in the way: what its CPU profile shows is the product's own refresh
 * path. Env: PORT, SESSIONS, TOKENS_OUT, APP (`example`, the default, or `library`: the token
 * router alone), and PROFILE_OUT: a V8 CPU profile taken from the moment the app listens
 * (start-up and seeding excluded) until SIGTERM.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createApp } from '../demo/app';
import { createLogger } from '../demo/serve';
import { MemoryUserStore } from '../demo/users';
import {
  InlineTokenJobs,
  MemoryRefreshTokenRepository,
  MemoryVersionStore,
} from 'refresh-rotation/memory';
import { RotationService } from 'refresh-rotation';
import { ACCESS_SECRET, REFRESH_SECRET } from './lib';
import { tokenRouterApp } from './token-router-app';

async function main(): Promise<void> {
  const repository = new MemoryRefreshTokenRepository();
  const service = new RotationService({
    repository,
    versions: new MemoryVersionStore(),
    jobs: new InlineTokenJobs(repository),
    accessToken: { secret: ACCESS_SECRET },
    refreshToken: { secrets: [REFRESH_SECRET] },
  });
  const tokens: string[] = [];
  for (let i = 0; i < Number(process.env.SESSIONS); i += 1) {
    tokens.push((await service.issue({ userId: `user-${Math.floor(i / 2)}` })).refreshToken);
  }
  writeFileSync(process.env.TOKENS_OUT!, JSON.stringify(tokens));
  const app =
    process.env.APP === 'library'
      ? tokenRouterApp(service)
      : createApp({
          service,
          users: new MemoryUserStore(),
          logger: createLogger({ logLevel: 'info', logFormat: 'json', nodeEnv: 'production' }),
          cookie: false,
          rateLimit: {
            loginPerMinute: 1_000_000,
            accountPerHour: 1_000_000,
            tokenPerMinute: 1_000_000,
          },
          ready: async () => undefined,
          bcryptRounds: 4,
          serveStaticPage: false,
        });
  const profiler = process.env.PROFILE_OUT ? new Session() : null;
  if (profiler) {
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.start');
  }
  const server = app.listen(Number(process.env.PORT));
  const stop = () => {
    server.closeIdleConnections();
    void (async () => {
      if (profiler) {
        const { profile } = await profiler.post('Profiler.stop');
        writeFileSync(process.env.PROFILE_OUT!, JSON.stringify(profile));
      }
      process.exit(0);
    })();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

void main();
