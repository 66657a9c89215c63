/**
 * The library without the demo app's middleware (helmet, request log, rate limit), shared by
 * bench/router-server.ts (on MongoDB) and bench/memory-app.ts (in memory). Its own module so the
 * floor harness, which imports bench/lib.ts, does not load the library's router.
 */
import express, { type Express } from 'express';
import { createRefreshRouter } from 'refresh-rotation/express';
import type { RotationService } from 'refresh-rotation';

/** `/healthz`, and the token router at `/auth` (no cookie; logs to the console). */
export function tokenRouterApp(service: RotationService): Express {
  const app = express();
  app.get('/healthz', (_req, res) => void res.json({ ok: true }));
  app.use('/auth', createRefreshRouter({ service, cookie: false, logger: console }));
  return app;
}
