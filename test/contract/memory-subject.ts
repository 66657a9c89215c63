/** Contract subjects on the in-memory adapters: a fresh store per test, nothing to close. */
import { MemoryRefreshTokenRepository, MemoryVersionStore } from '../../src/adapters/memory';
import type { ContractFactory } from './contract-subject';

export const memorySubject: ContractFactory = async () => ({
  repository: new MemoryRefreshTokenRepository(),
  versions: new MemoryVersionStore(),
  atomicAdvance: true,
  close: async () => undefined,
});
