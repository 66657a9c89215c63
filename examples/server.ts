/** `npm start`: the example app alone (the worker runs separately: `npm run worker`). */
import { loadEnv } from './env';
import { createLogger, exitOnStartupError, onShutdown, serve } from './serve';

async function main(): Promise<void> {
  const env = loadEnv();
  const logger = createLogger(env.logLevel);
  const serving = await serve(env, logger);
  onShutdown(logger, serving.close);
}

main().catch(exitOnStartupError);
