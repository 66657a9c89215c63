import { needsRevocationGuard } from '../../src/adapters/mongoose/write-strategy';

describe('which servers get the revocation guard (revocationGuard: auto)', () => {
  it.each([
    ['FerretDB v1.24.2', { version: '7.0.42', ferretdbVersion: 'v1.24.2' }],
    ['FerretDB 1.10.0 without the v', { version: '7.0.42', ferretdbVersion: '1.10.0' }],
    ['a FerretDB build that cannot read its version', { ferretdbVersion: 'unknown' }],
    ['a FerretDB that reports only a ferretdb section', { ferretdb: { version: 'x' } }],
  ])('%s: guarded (read-then-write find-and-modify)', (_name, buildInfo) => {
    expect(needsRevocationGuard(buildInfo)).toBe(true);
  });

  it.each([
    ['MongoDB 7', { version: '7.0.14', gitVersion: 'ce59cfc6a3c5e5c067dca0d30697edd68d4f5188' }],
    ['FerretDB v2.1.0 (atomic on DocumentDB)', { version: '7.0.77', ferretdbVersion: 'v2.1.0' }],
    ['FerretDB 2.0.0 without the v', { ferretdbVersion: '2.0.0' }],
    ['a later FerretDB', { ferretdbVersion: 'v10.0.0' }],
  ])('%s: the MongoDB write strategy', (_name, buildInfo) => {
    expect(needsRevocationGuard(buildInfo)).toBe(false);
  });
});
