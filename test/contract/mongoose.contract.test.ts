import { useMongooseSubjects } from './mongoose-subject';
import { describeRefreshTokenRepositoryContract } from './refresh-token-repository-contract';
import { describeVersionStoreContract } from './version-store-contract';

const subjects = useMongooseSubjects();
describeRefreshTokenRepositoryContract('mongoose', subjects);
describeVersionStoreContract('mongoose', subjects);
