import { memorySubject } from './memory-subject';
import { describeRefreshTokenRepositoryContract } from './refresh-token-repository-contract';
import { describeVersionStoreContract } from './version-store-contract';

describeRefreshTokenRepositoryContract('memory', memorySubject);
describeVersionStoreContract('memory', memorySubject);
