/**
 * Driver failures → the port's errors (one table). Duplicate keys become `ConflictError`; anything
 * that means "the server cannot be reached or did not answer in time" becomes
 * `StoreUnavailableError` (the HTTP layer answers 503 with it). The driver error is kept as `cause`.
 * Anything else (a bug, a bad query) is rethrown unchanged.
 */
import { ConflictError, RefreshRotationError, StoreUnavailableError } from '../../domain/errors';

/**
 * Driver and Mongoose error classes that mean the server is out of reach. Matched by name, so a
 * second copy of the driver in the app's tree is recognised too.
 */
const UNAVAILABLE_ERROR_NAMES = new Set([
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoPoolClearedError',
  'MongoServerSelectionError',
  'MongooseServerSelectionError',
  'MongoTopologyClosedError',
  'MongoNotConnectedError',
  'MongoClientClosedError',
  'MongoServerClosedError',
  'MongoOperationTimeoutError',
]);

/** Server codes of transient failures: time limits, shutdown, primary changes, host unreachable. */
const UNAVAILABLE_SERVER_CODES = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  50, // MaxTimeMSExpired
  89, // NetworkTimeout
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  262, // ExceededTimeLimit
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
]);

/** Mongoose's own messages when an operation cannot reach the driver. */
const UNAVAILABLE_MONGOOSE_MESSAGES = [
  /buffering timed out/,
  /Connection was force closed/,
  /before initial connection is complete/,
];

const DUPLICATE_KEY = 11000;

interface DriverErrorShape {
  name?: unknown | undefined;
  code?: unknown | undefined;
  message?: unknown | undefined;
  writeErrors?: unknown | undefined;
  err?: unknown | undefined;
  hasErrorLabel?: unknown | undefined;
}

function shapeOf(error: unknown): DriverErrorShape {
  return typeof error === 'object' && error !== null ? (error as DriverErrorShape) : {};
}

function errorNames(error: unknown): string[] {
  const names: string[] = [];
  for (
    let proto: unknown = error;
    proto && proto !== Error.prototype;
    proto = Object.getPrototypeOf(proto)
  ) {
    const name = (proto as { constructor?: { name?: unknown } }).constructor?.name;
    if (typeof name === 'string') names.push(name);
  }
  const own = shapeOf(error).name;
  if (typeof own === 'string') names.push(own);
  return names;
}

function writeErrorCodes(error: unknown): unknown[] {
  const writeErrors = shapeOf(error).writeErrors;
  if (!Array.isArray(writeErrors)) return [];
  return writeErrors.map((item: unknown) => shapeOf(item).code ?? shapeOf(shapeOf(item).err).code);
}

/** FerretDB v1 (SQLite) reports a unique-index violation on update as an internal error (code 1). */
function isSqliteUniqueViolation(error: unknown): boolean {
  const { code, message } = shapeOf(error);
  return code === 1 && typeof message === 'string' && message.includes('UNIQUE constraint failed');
}

/** Whether the error is a duplicate-key violation of a unique index. */
export function isDuplicateKeyError(error: unknown): boolean {
  return (
    shapeOf(error).code === DUPLICATE_KEY ||
    writeErrorCodes(error).includes(DUPLICATE_KEY) ||
    isSqliteUniqueViolation(error)
  );
}

/** Whether the error means the store is unreachable or did not answer in time. */
export function isUnavailableError(error: unknown): boolean {
  if (errorNames(error).some((name) => UNAVAILABLE_ERROR_NAMES.has(name))) return true;
  const { code, message, hasErrorLabel } = shapeOf(error);
  if (typeof code === 'number' && UNAVAILABLE_SERVER_CODES.has(code)) return true;
  if (typeof hasErrorLabel === 'function') {
    const label = (name: string) => (hasErrorLabel as (name: string) => boolean).call(error, name);
    if (label('RetryableWriteError') || label('ResetPool')) return true;
  }
  return (
    errorNames(error).includes('MongooseError') &&
    typeof message === 'string' &&
    UNAVAILABLE_MONGOOSE_MESSAGES.some((pattern) => pattern.test(message))
  );
}

/**
 * The error to throw for a failure of `operation`: the port's error when one applies, else the
 * original error. Errors of this library pass through untouched.
 */
export function toStoreError(error: unknown, operation: string): unknown {
  if (error instanceof RefreshRotationError) return error;
  if (isDuplicateKeyError(error)) {
    return new ConflictError(
      `${operation}: a record with this id, sessionId or tokenHash already exists`,
      {
        cause: error,
      },
    );
  }
  if (isUnavailableError(error)) {
    return new StoreUnavailableError(
      `${operation}: the MongoDB server is unavailable (${describe(error)})`,
      {
        cause: error,
      },
    );
  }
  return error;
}

function describe(error: unknown): string {
  const { name, message } = shapeOf(error);
  const label = typeof name === 'string' ? name : 'Error';
  return `${label}: ${typeof message === 'string' ? message : String(error)}`;
}

/** Run `work`, translating driver failures with {@link toStoreError}. */
export async function mapStoreErrors<T>(operation: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw toStoreError(error, operation);
  }
}
