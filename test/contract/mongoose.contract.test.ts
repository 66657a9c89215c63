import { useMongooseSubjects } from './mongoose-subject';
import { describeRepositoryContract } from './repository-contract';

describeRepositoryContract('mongoose', useMongooseSubjects());
