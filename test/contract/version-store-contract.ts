/**
 * The adapter-agnostic contract of the `VersionStore` port (docs/architecture.md, "Ports"):
 * per-user and global minimum versions, bumped without lost updates. Every adapter runs it from its
 * own `*.contract[.unit].test.ts` with the same factory as the repository contract.
 */
import type { VersionStore } from '../../src/domain/version-store';
import { EPOCH } from '../support/fake-clock';
import type { ContractFactory, ContractSubject } from './contract-subject';

const MINUTE = 60_000;

function at(offsetMs: number): Date {
  return new Date(EPOCH.getTime() + offsetMs);
}

export function describeVersionStoreContract(name: string, factory: ContractFactory): void {
  describe(`VersionStore contract: ${name}`, () => {
    let subject: ContractSubject;
    let versions: VersionStore;

    beforeEach(async () => {
      subject = await factory();
      versions = subject.versions;
    });

    afterEach(async () => {
      await subject.close();
    });

    it('a user never bumped has minimum version 0', async () => {
      expect(await versions.getUserMinVersion('nobody')).toBe(0);
    });

    it('bumpUserMinVersion raises the user by one, returns the new value, and leaves other users alone', async () => {
      expect(await versions.bumpUserMinVersion('alice')).toBe(1);
      expect(await versions.bumpUserMinVersion('alice')).toBe(2);
      expect(await versions.getUserMinVersion('alice')).toBe(2);
      expect(await versions.getUserMinVersion('bob')).toBe(0);
    });

    it('bumpUserMinVersion loses no update under concurrency', async () => {
      const results = await Promise.all(
        Array.from({ length: 20 }, () => versions.bumpUserMinVersion('alice')),
      );
      expect(await versions.getUserMinVersion('alice')).toBe(20);
      expect(Math.max(...results)).toBe(20);
      for (const result of results) expect(result).toBeGreaterThanOrEqual(1);
    });

    it('the global version defaults to 0, never rotated', async () => {
      expect(await versions.getGlobal()).toEqual({
        minVersion: 0,
        rotatedAt: null,
        reason: null,
        gracePeriodMs: 0,
      });
    });

    it('bumpGlobal raises the global minimum by one and records when, why and the grace period', async () => {
      const first = await versions.bumpGlobal({
        reason: 'breach',
        gracePeriodMs: 60_000,
        at: at(MINUTE),
      });
      expect(first).toEqual({
        minVersion: 1,
        rotatedAt: at(MINUTE),
        reason: 'breach',
        gracePeriodMs: 60_000,
      });
      expect(await versions.getGlobal()).toEqual(first);
      const second = await versions.bumpGlobal({
        reason: 'again',
        gracePeriodMs: 0,
        at: at(2 * MINUTE),
      });
      expect(second).toEqual({
        minVersion: 2,
        rotatedAt: at(2 * MINUTE),
        reason: 'again',
        gracePeriodMs: 0,
      });
      expect(await versions.getGlobal()).toEqual(second);
    });

    it('bumpGlobal loses no update under concurrency', async () => {
      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          versions.bumpGlobal({ reason: `r${i}`, gracePeriodMs: 0, at: at(i) }),
        ),
      );
      expect((await versions.getGlobal()).minVersion).toBe(10);
    });
  });
}
