/**
 * The server of bench/dpop-refresh.ts: the token router with DPoP on (memory adapters, a memory
 * replay cache), a login route that binds when its request carries a proof, and `GET /cpu` with
 * this process's CPU time, so the bench counts the server's work only (the client signs proofs).
 * Env: PORT.
 */
import express from 'express';
import { RotationService } from 'refresh-rotation';
import { createRefreshRouter, errorHandler } from 'refresh-rotation/express';
import {
  InlineTokenJobs,
  MemoryDPoPReplayCache,
  MemoryRefreshTokenRepository,
  MemoryVersionStore,
} from 'refresh-rotation/memory';
import { ACCESS_SECRET, REFRESH_SECRET, serveUntilSignal } from './lib';

const TOKEN_PATH = '/auth/token';

const repository = new MemoryRefreshTokenRepository();
const service = new RotationService({
  repository,
  versions: new MemoryVersionStore(),
  jobs: new InlineTokenJobs(repository),
  accessToken: { secret: ACCESS_SECRET },
  refreshToken: { secrets: [REFRESH_SECRET] },
});
const origin = `http://127.0.0.1:${process.env.PORT}`;
const auth = createRefreshRouter({
  service,
  cookie: false,
  logger: console,
  dpop: {
    tokenEndpointUrl: `${origin}${TOKEN_PATH}`,
    replayCache: new MemoryDPoPReplayCache({ maxEntries: 10_000_000 }),
  },
});

const app = express();
app.get('/healthz', (_req, res) => void res.json({ ok: true }));
app.get('/cpu', (_req, res) => {
  const { user, system } = process.cpuUsage();
  res.json({ micros: user + system });
});
app.post('/login', async (req, res, next) => {
  try {
    const proof = await auth.verifyDPoP(req, `${origin}/login`);
    res.json(await auth.issue(res, { userId: 'bench', dpop: proof }));
  } catch (error) {
    next(error);
  }
});
app.use('/auth', auth);
app.use(errorHandler({ logger: console }));
serveUntilSignal(app, () => Promise.resolve());
