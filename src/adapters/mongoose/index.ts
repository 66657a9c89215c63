/**
 * refresh-rotation/mongoose: the MongoDB adapters, on the caller's Mongoose connection.
 *
 * ```ts
 * const connection = await mongoose
 *   .createConnection(uri, {
 *     serverSelectionTimeoutMS: 2_000, // fail fast (store_unavailable) instead of the driver's 30 s
 *     connectTimeoutMS: 2_000,
 *     socketTimeoutMS: 10_000,
 *   })
 *   .asPromise();
 * const repository = new MongooseRefreshTokenRepository(connection);
 * await repository.ensureIndexes();
 * const versions = new MongooseVersionStore(connection);
 * ```
 */
export { MongooseRefreshTokenRepository } from './mongoose-refresh-token-repository';
export type { MongooseRefreshTokenRepositoryOptions } from './mongoose-refresh-token-repository';
export { MongooseVersionStore } from './mongoose-version-store';
export type { MongooseVersionStoreOptions } from './mongoose-version-store';
export type { RevocationGuardMode } from './write-strategy';
export { isDuplicateKeyError, isUnavailableError, toStoreError } from './errors';
export { reopenWhenMonitorStuck } from './monitor-watchdog';
export type { ReopenOptions, StuckHeartbeat } from './monitor-watchdog';
