import { memorySubject } from './memory-subject';
import { describeRotationServiceContract } from './rotation-service-contract';

describeRotationServiceContract('memory', memorySubject);
