/**
 * Start the demo app on a port with a logger, and stop it cleanly on SIGTERM/SIGINT. Shared by
 * `npm start` (server.ts) and `npm run demo` (main.ts).
 */
import { existsSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Logger } from 'pino';
import { EnvError, type Env } from './env';
import { createPinoLogger } from '../startup/logging';
import { listenFailed, StartupError } from '../startup/failures';
import { createRuntime, type Runtime } from './runtime';
import { shippedClientModule } from './app';
import { telemetry } from './telemetry';

/** The app's logger. Redaction is a second line of defence: request logs never carry headers or bodies. */
export function createLogger(env: Pick<Env, 'logLevel' | 'logFormat' | 'nodeEnv'>): Logger {
  return createPinoLogger(
    {
      level: env.logLevel,
      base: { service: 'refresh-rotation-example' },
      ...(telemetry ? { mixin: () => telemetry!.traceFields() } : {}),
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'res.headers["set-cookie"]',
          'req.body',
          'res.body',
          '*.refresh_token',
          '*.access_token',
          '*.password',
        ],
        censor: '[redacted]',
      },
    },
    env,
  );
}

export interface Serving {
  runtime: Runtime;
  server: Server;
  /** Stop accepting, finish open requests, close the stores. Idempotent. */
  close(): Promise<void>;
}

function describeMode(env: Env, runtime: Runtime): string {
  switch (runtime.mode) {
    case 'memory':
      return env.devSecretsGenerated
        ? 'IN-MEMORY DEMO MODE: no MONGODB_URI/REDIS_URL, so users and sessions live in this process, jobs run inline, and the token secrets were generated at start (development only; everything is lost on restart)'
        : 'IN-MEMORY DEMO MODE: no MONGODB_URI/REDIS_URL, so users and sessions live in this process and jobs run inline (everything is lost on restart)';
    case 'mongodb':
      return 'storage: MongoDB; no REDIS_URL, so revoke-all and last-used updates run inline';
    case 'mongodb+bullmq':
      return 'storage: MongoDB; jobs: BullMQ on Redis, done by the worker (npm run worker; npm run demo starts one)';
  }
}

/** Build the app from `env` and listen on `env.http.port`. */
export async function serve(env: Env, logger: Logger): Promise<Serving> {
  const runtime = await createRuntime(env, logger);
  const level = runtime.mode === 'memory' ? 'warn' : 'info';
  logger[level]({ mode: runtime.mode }, describeMode(env, runtime));
  // Not `app.listen`: Express 5 hands a listen error to its callback, which cannot tell it apart.
  const { tls } = env.http;
  const server: Server = tls
    ? createHttpsServer({ key: tls.key, cert: tls.cert }, runtime.app)
    : createHttpServer(runtime.app);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.once('listening', () => {
        server.off('error', reject);
        resolve();
      });
      server.listen(env.http.port);
    });
  } catch (error) {
    await runtime.close();
    throw listenFailed(env.http.port, error);
  }
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : env.http.port;
  const scheme = tls ? 'https' : 'http';
  logger.info({ port }, `example app listening on ${scheme}://localhost:${port}`);
  if (env.http.cookie.dbsc)
    logger.info(
      { boundTtlMs: env.http.cookie.dbsc.boundTtlMs },
      'device-bound sessions (DBSC) on: a cookie login offers the browser to bind its session',
    );
  const clientModule = shippedClientModule();
  // A fresh clone has no dist/ yet: the page then gets the module built from src/client.
  if (!existsSync(clientModule))
    logger.info(
      { file: clientModule },
      'no built refresh-rotation/client yet: the demo page gets it built from src/client',
    );
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await runtime.close();
    })());
  return { runtime, server, close };
}

/** On SIGTERM/SIGINT run `stop` once, then exit (1 if it failed or overran `timeoutMs`). */
export function onShutdown(logger: Logger, stop: () => Promise<void>, timeoutMs = 10_000): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error({ timeoutMs }, 'shutdown overran; exiting');
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    stop().then(
      async () => {
        await telemetry?.shutdown().catch(() => undefined);
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', handle);
  process.once('SIGINT', handle);
}

/**
 * Print a start-up failure without a stack trace when it says what to do (an environment problem,
 * a service down, a taken port), with one otherwise; exit 1.
 */
export function exitOnStartupError(error: unknown): never {
  const known = error instanceof StartupError || error instanceof EnvError;
  const text =
    known || !(error instanceof Error) ? String((error as Error)?.message ?? error) : error.stack;
  process.stderr.write(`refresh-rotation example app failed to start: ${text}\n`);
  process.exit(1);
}
