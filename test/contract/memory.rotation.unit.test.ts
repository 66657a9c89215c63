import { MemoryRefreshTokenRepository, MemoryVersionStore } from '../../src/adapters/memory';
import { describeRotationServiceContract } from './rotation-service-contract';

describeRotationServiceContract('memory', async () => ({
  repository: new MemoryRefreshTokenRepository(),
  versions: new MemoryVersionStore(),
  atomicAdvance: true,
  close: async () => undefined,
}));
