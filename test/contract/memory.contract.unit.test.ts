import { MemoryRefreshTokenRepository, MemoryVersionStore } from '../../src/adapters/memory';
import { describeRepositoryContract } from './repository-contract';

describeRepositoryContract('memory', async () => ({
  repository: new MemoryRefreshTokenRepository(),
  versions: new MemoryVersionStore(),
  atomicAdvance: true,
  close: async () => undefined,
}));
