/**
 * A `RefreshTokenRepository` (the port) in front of a real one that rejects every call while it is
 * "down", the way a store that lost its server does; for the tests of what callers do with a
 * failing store (a job that must fail to be retried). Not a mock: while up it is the real adapter.
 */
import type { RefreshTokenRepository } from '../../src/domain/refresh-token-repository';
import { interceptCalls } from './intercept';

export interface RepositoryOutage {
  readonly repository: RefreshTokenRepository;
  /** From now on every call rejects with `error`. */
  fail(error?: Error): void;
  /** From now on every call reaches the real repository again. */
  recover(): void;
  /** Calls refused while down, by method name. */
  readonly refused: string[];
}

export function withOutage(real: RefreshTokenRepository): RepositoryOutage {
  let failure: Error | null = null;
  const refused: string[] = [];
  const repository = interceptCalls(real, (method, call) => {
    if (failure === null) return call();
    refused.push(method);
    return Promise.reject(failure);
  });
  return {
    repository,
    refused,
    fail: (error = new Error('connection <monitor> to 127.0.0.1:27017 closed')) => {
      failure = error;
    },
    recover: () => {
      failure = null;
    },
  };
}
