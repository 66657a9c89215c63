/**
 * Start-up failures that name their cause: which service, which variable, and what to do. Shared
 * by the worker (workers/main.ts) and the demo app (demo/).
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** A start-up failure an operator can act on; `message` says what failed and what to do. */
export class StartupError extends Error {
  constructor(
    message: string,
    /** A stable code: `service_unreachable`, `port_in_use`, `listen_failed`. */
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StartupError';
  }
}

/** The connection string without its credentials, for messages and logs. */
export function redactUri(uri: string): string {
  return uri.replace(/\/\/[^@/]*@/, '//***@');
}

/** The innermost useful message of a driver error (MongoServerSelectionError, ioredis…). */
export function reasonOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return reasonOf(error.errors[0]);
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

const SERVICES = {
  mongodb: { name: 'MongoDB', variable: 'MONGODB_URI' },
  redis: { name: 'Redis', variable: 'REDIS_URL' },
} as const;

/** What MongoDB and Redis answer when they refuse the credentials (the server is up). */
const CREDENTIALS_REFUSED =
  /authentication failed|auth(?:entication)? mechanism|\bSCRAM\b|NOAUTH|WRONGPASS|invalid username-password|requires authentication/i;

/**
 * "MongoDB is unreachable at MONGODB_URI=… (connect ECONNREFUSED …): start MongoDB or correct
 * MONGODB_URI.", or, when the server answered but refused the credentials, what to correct instead.
 */
export function unreachable(
  service: keyof typeof SERVICES,
  uri: string,
  reason: string,
  advice = '',
): StartupError {
  const { name, variable } = SERVICES[service];
  const at = `${variable}=${redactUri(uri)} (${reason})`;
  const message = CREDENTIALS_REFUSED.test(reason)
    ? `${name} refused the credentials in ${at}: correct the user, password or authentication options in ${variable}${advice}.`
    : `${name} is unreachable at ${at}: start ${name} or correct ${variable}${advice}.`;
  return new StartupError(message, 'service_unreachable');
}

/** The listen error of `PORT` as an operator reads it. */
export function listenFailed(port: number, error: unknown): StartupError {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code === 'EADDRINUSE') {
    return new StartupError(
      `PORT ${port} is already in use by another process: stop that process or set PORT to a free port.`,
      'port_in_use',
      { cause: error },
    );
  }
  if (code === 'EACCES') {
    return new StartupError(
      `PORT ${port} needs privileges this process does not have: set PORT to 1024 or above.`,
      'listen_failed',
      { cause: error },
    );
  }
  return new StartupError(`cannot listen on PORT ${port}: ${reasonOf(error)}.`, 'listen_failed', {
    cause: error,
  });
}

/** Whether `promise` settled (either way) within `ms`; the timer does not hold the process open. */
export function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const settled = promise.then(
    () => true,
    () => true,
  );
  return Promise.race([settled, sleep(ms, false, { ref: false })]);
}
