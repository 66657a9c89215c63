/**
 * What every contract suite (refresh-token-repository-contract.ts, version-store-contract.ts,
 * rotation-service-contract.ts) is given: a factory called before each test that opens a fresh,
 * empty store of one adapter and closes it afterwards.
 */
import type { RefreshTokenRepository } from '../../src/domain/refresh-token-repository';
import type { VersionStore } from '../../src/domain/version-store';

/** What a contract factory returns. */
export interface ContractSubject {
  repository: RefreshTokenRepository;
  versions: VersionStore;
  /** Whether concurrent `rotate` calls have exactly one winner. Default `true`. */
  atomicAdvance?: boolean;
  close(): Promise<void>;
}

/** Opens a fresh, empty store for one test. */
export type ContractFactory = () => Promise<ContractSubject>;
