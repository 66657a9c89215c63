import { useMongooseSubjects } from './mongoose-subject';
import { describeRotationServiceContract } from './rotation-service-contract';

describeRotationServiceContract('mongoose', useMongooseSubjects());
