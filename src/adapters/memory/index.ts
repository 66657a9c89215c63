/** refresh-rotation/memory: in-process adapters for tests, the demo and single-instance use. */
export { MemoryRefreshTokenRepository } from './memory-refresh-token-repository';
export type { MemoryRefreshTokenRepositoryOptions } from './memory-refresh-token-repository';
export { MemoryVersionStore } from './memory-version-store';
export { InlineTokenJobs } from '../../domain/inline-token-jobs';
export { MemoryRevocationBus } from './memory-revocation-bus';
export { MemoryDPoPReplayCache } from './memory-dpop-replay-cache';
export type { MemoryDPoPReplayCacheOptions } from './memory-dpop-replay-cache';
