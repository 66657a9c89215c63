/**
 * refresh-rotation/redis: the revocation bus on Redis pub/sub, so every app instance drops its
 * cached revocation state at once when any instance revokes.
 */
export { RedisRevocationBus, DEFAULT_REVOCATION_CHANNEL } from './redis-revocation-bus';
export type { RedisRevocationBusOptions } from './redis-revocation-bus';
