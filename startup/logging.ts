/**
 * The loggers of the worker and the demo app: JSON lines (pino) for machines; `pino-pretty` for
 * a human at a terminal in development (`LOG_FORMAT=auto`, the default) when it is installed (a
 * development dependency here, absent from the image). Whatever a library prints on the console
 * (BullMQ's warnings) goes through the same logger, so stdout stays one JSON object per line.
 */
import { format } from 'node:util';
import pino, { type Logger, type LoggerOptions } from 'pino';

export type LogFormat = 'auto' | 'json' | 'pretty';
export const LOG_FORMATS: readonly LogFormat[] = ['auto', 'json', 'pretty'];

/** Pretty output for `pretty`, and for `auto` in development at a terminal; JSON otherwise. */
export function wantsPretty(logFormat: LogFormat, nodeEnv: string): boolean {
  if (logFormat === 'json') return false;
  if (logFormat === 'pretty') return true;
  return nodeEnv === 'development' && process.stdout.isTTY === true;
}

/** A pino logger, through pino-pretty when {@link wantsPretty} and it is installed. */
export function createPinoLogger(
  options: LoggerOptions,
  settings: { logFormat: LogFormat; nodeEnv: string },
): Logger {
  if (wantsPretty(settings.logFormat, settings.nodeEnv)) {
    try {
      return pino(
        options,
        pino.transport({
          target: 'pino-pretty',
          options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' },
        }),
      );
    } catch {
      // pino-pretty is not installed (the production image): JSON lines.
    }
  }
  return pino(options);
}

/** Route `console.*` through `logger` (BullMQ prints its warnings there). */
export function routeConsoleTo(logger: Logger): void {
  const to =
    (level: 'info' | 'warn' | 'error') =>
    (...args: unknown[]) =>
      logger[level]({ source: 'console' }, format(...args));
  console.log = to('info');
  console.info = to('info');
  console.warn = to('warn');
  console.error = to('error');
}
