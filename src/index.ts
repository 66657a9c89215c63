/** refresh-rotation: public API. */
export * from './domain/errors';
export type * from './domain/refresh-token';
export { systemClock } from './domain/refresh-token';
export type * from './domain/refresh-token-repository';
export type * from './domain/version-store';
export type * from './domain/token-jobs';
