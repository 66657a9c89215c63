/**
 * The logger the worker writes to: pino's shape (`logger.info({ ...fields }, 'message')`), so a
 * pino logger fits as it is.
 */

/** One level of a {@link WorkerLogger}: fields and a message, or a message alone. */
export type WorkerLogFn = (fieldsOrMessage: object | string, message?: string) => void;

/** Where the worker logs. A pino logger fits; so does `console`. */
export interface WorkerLogger {
  debug: WorkerLogFn;
  info: WorkerLogFn;
  warn: WorkerLogFn;
  error: WorkerLogFn;
}

/** The default: `console`, without debug lines. */
export const consoleWorkerLogger: WorkerLogger = {
  debug: () => undefined,
  info: (fields, message) => console.info(...logArgs(fields, message)),
  warn: (fields, message) => console.warn(...logArgs(fields, message)),
  error: (fields, message) => console.error(...logArgs(fields, message)),
};

function logArgs(fields: object | string, message: string | undefined): unknown[] {
  return message === undefined ? [fields] : [message, fields];
}
