/**
 * refresh-rotation/redis: the revocation bus on Redis pub/sub, so every app instance drops its
 * cached revocation state at once when any instance revokes; and the DPoP replay cache, so a
 * DPoP proof is single-use across every instance.
 */
export { RedisRevocationBus, DEFAULT_REVOCATION_CHANNEL } from './redis-revocation-bus';
export type { RedisRevocationBusOptions } from './redis-revocation-bus';
export { RedisDPoPReplayCache, DEFAULT_DPOP_REPLAY_PREFIX } from './redis-dpop-replay-cache';
export type { RedisDPoPReplayCacheOptions } from './redis-dpop-replay-cache';
