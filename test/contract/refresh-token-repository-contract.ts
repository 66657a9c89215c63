/**
 * The adapter-agnostic contract of the `RefreshTokenRepository` port (docs/architecture.md,
 * "Ports"). Every adapter runs it from its own `*.contract[.unit].test.ts`, next to the
 * `VersionStore` contract (version-store-contract.ts):
 *
 * ```ts
 * describeRefreshTokenRepositoryContract('mongoose', useMongooseSubjects());
 * ```
 *
 * The factory (contract-subject.ts) is called before every test and must return a fresh, empty
 * store; `close()` is called after it. `atomicAdvance` (default `true`) says whether the backend's
 * find-and-modify is atomic: when false (FerretDB v1), several concurrent `rotate` callers may all
 * "win", but they must then have written identical state, one generation step.
 */
import { ConflictError, NotFoundError } from '../../src/domain/errors';
import type { RefreshTokenRecord } from '../../src/domain/refresh-token';
import type { RefreshTokenRepository } from '../../src/domain/refresh-token-repository';
import { aNewRecord, aRotation, aTokenHash, savedFrom } from '../support/builders';
import { EPOCH } from '../support/fake-clock';
import type { ContractFactory, ContractSubject } from './contract-subject';

const MINUTE = 60_000;
const DAY = 86_400_000;

function at(offsetMs: number): Date {
  return new Date(EPOCH.getTime() + offsetMs);
}

export function describeRefreshTokenRepositoryContract(
  name: string,
  factory: ContractFactory,
): void {
  describe(`RefreshTokenRepository contract: ${name}`, () => {
    let subject: ContractSubject;
    let repository: RefreshTokenRepository;

    beforeEach(async () => {
      subject = await factory();
      repository = subject.repository;
    });

    afterEach(async () => {
      await subject.close();
    });

    async function saved(
      overrides: Parameters<typeof aNewRecord>[0] = {},
    ): Promise<RefreshTokenRecord> {
      return repository.save(aNewRecord(overrides));
    }

    describe('save', () => {
      it('returns the new record, live and never used, and it can be read back by id', async () => {
        const input = aNewRecord();
        const record = await repository.save(input);
        expect(record).toEqual(savedFrom(input));
        expect(await repository.findById(input.id)).toEqual(savedFrom(input));
      });

      it('keeps rotatedAt and lastUsedAt when given', async () => {
        const input = aNewRecord({ rotatedAt: at(MINUTE), lastUsedAt: at(2 * MINUTE) });
        const record = await repository.save(input);
        expect(record.rotatedAt).toEqual(at(MINUTE));
        expect(record.lastUsedAt).toEqual(at(2 * MINUTE));
      });

      it('rejects a duplicate sessionId with ConflictError and keeps the first record', async () => {
        const first = await saved();
        const duplicate = aNewRecord({ sessionId: first.sessionId, userId: 'someone-else' });
        await expect(repository.save(duplicate)).rejects.toBeInstanceOf(ConflictError);
        await expect(repository.save(duplicate)).rejects.toMatchObject({ code: 'conflict' });
        expect(await repository.findBySessionId(first.sessionId)).toEqual(first);
        expect(await repository.findById(duplicate.id)).toBeNull();
      });

      it('rejects a duplicate id with ConflictError', async () => {
        const first = await saved();
        await expect(repository.save(aNewRecord({ id: first.id }))).rejects.toBeInstanceOf(
          ConflictError,
        );
        expect(await repository.findById(first.id)).toEqual(first);
      });

      it('rejects a duplicate tokenHash with ConflictError', async () => {
        const first = await saved();
        const duplicate = aNewRecord({ tokenHash: first.tokenHash });
        await expect(repository.save(duplicate)).rejects.toBeInstanceOf(ConflictError);
        expect(await repository.findById(duplicate.id)).toBeNull();
      });

      it('returns copies: mutating a returned record does not change the store', async () => {
        const record = await saved();
        record.generation = 99;
        record.client.label = 'mutated';
        const again = await repository.findById(record.id);
        expect(again?.generation).toBe(0);
        expect(again?.client.label).toBeUndefined();
      });
    });

    describe('findByTokenHash', () => {
      it('finds the live record holding the hash, even when expired', async () => {
        const record = await saved({ expiresAt: at(-DAY), absoluteExpiresAt: at(-DAY) });
        expect(await repository.findByTokenHash(record.tokenHash)).toEqual(record);
      });

      it('returns null for an unknown hash', async () => {
        await saved();
        expect(await repository.findByTokenHash(aTokenHash())).toBeNull();
      });

      it('ignores revoked records', async () => {
        const record = await saved();
        await repository.revokeBySession(record.sessionId, 'logout', { at: at(MINUTE) });
        expect(await repository.findByTokenHash(record.tokenHash)).toBeNull();
      });

      it('follows rotation: the old hash is gone and the new one finds the record', async () => {
        const record = await saved();
        const rotation = aRotation(record);
        await repository.rotate(rotation);
        expect(await repository.findByTokenHash(record.tokenHash)).toBeNull();
        expect((await repository.findByTokenHash(rotation.nextTokenHash))?.id).toBe(record.id);
      });
    });

    describe('findById and findBySessionId', () => {
      it('return null for unknown keys', async () => {
        await saved();
        expect(await repository.findById(aNewRecord().id)).toBeNull();
        expect(await repository.findBySessionId(aNewRecord().sessionId)).toBeNull();
      });

      it('return revoked records too', async () => {
        const record = await saved();
        await repository.revokeBySession(record.sessionId, 'logout', { at: at(MINUTE) });
        const byId = await repository.findById(record.id);
        const bySession = await repository.findBySessionId(record.sessionId);
        expect(byId).toEqual({ ...record, revokedAt: at(MINUTE), revokedReason: 'logout' });
        expect(bySession).toEqual(byId);
      });
    });

    describe('updateLastUsed', () => {
      it('sets lastUsedAt to the given time', async () => {
        const record = await saved({ lastUsedAt: at(5 * MINUTE) });
        await repository.updateLastUsed(record.id, at(MINUTE));
        expect((await repository.findById(record.id))?.lastUsedAt).toEqual(at(MINUTE));
      });

      it('defaults to now', async () => {
        const record = await saved();
        const before = Date.now();
        await repository.updateLastUsed(record.id);
        const lastUsedAt = (await repository.findById(record.id))?.lastUsedAt;
        expect(lastUsedAt).toBeInstanceOf(Date);
        expect(lastUsedAt!.getTime()).toBeGreaterThanOrEqual(before);
        expect(lastUsedAt!.getTime()).toBeLessThanOrEqual(Date.now());
      });

      it('rejects with NotFoundError for an unknown id', async () => {
        await expect(repository.updateLastUsed(aNewRecord().id, at(0))).rejects.toBeInstanceOf(
          NotFoundError,
        );
      });
    });

    describe('delete', () => {
      it('removes the record from every lookup', async () => {
        const record = await saved();
        const other = await saved();
        await repository.delete(record.id);
        expect(await repository.findById(record.id)).toBeNull();
        expect(await repository.findBySessionId(record.sessionId)).toBeNull();
        expect(await repository.findByTokenHash(record.tokenHash)).toBeNull();
        expect(await repository.findById(other.id)).toEqual(other);
      });

      it('rejects with NotFoundError for an unknown id, also on a second delete', async () => {
        const record = await saved();
        await expect(repository.delete(aNewRecord().id)).rejects.toMatchObject({
          code: 'not_found',
        });
        await repository.delete(record.id);
        await expect(repository.delete(record.id)).rejects.toBeInstanceOf(NotFoundError);
      });
    });

    describe('revokeBySession', () => {
      it('revokes a live session with the time and reason, and reports it', async () => {
        const record = await saved();
        expect(
          await repository.revokeBySession(record.sessionId, 'logout', { at: at(MINUTE) }),
        ).toBe(true);
        const revoked = await repository.findBySessionId(record.sessionId);
        expect(revoked).toMatchObject({ revokedAt: at(MINUTE), revokedReason: 'logout' });
      });

      it('is idempotent: a second call returns false and keeps the first time and reason', async () => {
        const record = await saved();
        await repository.revokeBySession(record.sessionId, 'logout', { at: at(MINUTE) });
        expect(
          await repository.revokeBySession(record.sessionId, 'admin_action', {
            at: at(2 * MINUTE),
          }),
        ).toBe(false);
        expect(await repository.findBySessionId(record.sessionId)).toMatchObject({
          revokedAt: at(MINUTE),
          revokedReason: 'logout',
        });
      });

      it('returns false for an unknown session', async () => {
        expect(await repository.revokeBySession(aNewRecord().sessionId, 'logout')).toBe(false);
      });

      it('sets revokedAt without an explicit time', async () => {
        const record = await saved();
        await repository.revokeBySession(record.sessionId, 'logout');
        expect((await repository.findBySessionId(record.sessionId))?.revokedAt).toBeInstanceOf(
          Date,
        );
      });

      it('leaves other sessions live', async () => {
        const record = await saved();
        const other = await saved();
        await repository.revokeBySession(record.sessionId, 'logout');
        expect(await repository.findBySessionId(other.sessionId)).toEqual(other);
      });
    });

    describe('revokeAllForUser', () => {
      it("revokes every live record of the user and no one else's, returning the count", async () => {
        const mine = [await saved({ userId: 'alice' }), await saved({ userId: 'alice' })];
        const theirs = await saved({ userId: 'bob' });
        expect(
          await repository.revokeAllForUser('alice', 'password_changed', { at: at(MINUTE) }),
        ).toBe(2);
        for (const record of mine) {
          expect(await repository.findById(record.id)).toMatchObject({
            revokedAt: at(MINUTE),
            revokedReason: 'password_changed',
          });
        }
        expect(await repository.findById(theirs.id)).toEqual(theirs);
      });

      it("defaults the reason to 'user_requested'", async () => {
        const record = await saved({ userId: 'alice' });
        await repository.revokeAllForUser('alice');
        expect((await repository.findById(record.id))?.revokedReason).toBe('user_requested');
      });

      it('does not count or rewrite records that were already revoked', async () => {
        const old = await saved({ userId: 'alice' });
        await saved({ userId: 'alice' });
        await repository.revokeBySession(old.sessionId, 'logout', { at: at(MINUTE) });
        expect(
          await repository.revokeAllForUser('alice', 'admin_action', { at: at(2 * MINUTE) }),
        ).toBe(1);
        expect(await repository.findById(old.id)).toMatchObject({
          revokedAt: at(MINUTE),
          revokedReason: 'logout',
        });
      });

      it('with issuedBefore, revokes only records created strictly before it', async () => {
        const older = await saved({ userId: 'alice', createdAt: at(0) });
        const same = await saved({ userId: 'alice', createdAt: at(MINUTE) });
        const newer = await saved({ userId: 'alice', createdAt: at(2 * MINUTE) });
        const count = await repository.revokeAllForUser('alice', 'password_changed', {
          issuedBefore: at(MINUTE),
        });
        expect(count).toBe(1);
        expect((await repository.findById(older.id))?.revokedAt).not.toBeNull();
        expect(await repository.findById(same.id)).toEqual(same);
        expect(await repository.findById(newer.id)).toEqual(newer);
      });

      it('returns 0 for a user without records', async () => {
        await saved({ userId: 'alice' });
        expect(await repository.revokeAllForUser('nobody')).toBe(0);
      });
    });

    describe('findByTokenVerification', () => {
      it('returns the live record whose hash the verifier accepts', async () => {
        await saved();
        const wanted = await saved();
        const found = await repository.findByTokenVerification(
          'token',
          (_token, hash) => hash === wanted.tokenHash,
        );
        expect(found).toEqual(wanted);
      });

      it('accepts an async verifier and skips revoked records', async () => {
        const revoked = await saved();
        await repository.revokeBySession(revoked.sessionId, 'logout');
        const found = await repository.findByTokenVerification(
          'token',
          async (_token, hash) => hash === revoked.tokenHash,
        );
        expect(found).toBeNull();
      });

      it('passes the token to the verifier and returns null when nothing matches', async () => {
        await saved();
        const seen: string[] = [];
        const found = await repository.findByTokenVerification('the-token', (token) => {
          seen.push(token);
          return false;
        });
        expect(found).toBeNull();
        expect(seen).toEqual(['the-token']);
      });
    });

    describe('rotate', () => {
      it('moves the current, live, unexpired token to the next generation, with the given hash, seal, key and times, and keeps the presented hash in the supersede entry', async () => {
        const record = await saved({ lastUsedAt: at(-MINUTE) });
        const input = aRotation(record, at(MINUTE), { nextKeyId: 9 });
        const rotated = await repository.rotate(input);
        const expected = {
          ...record,
          generation: 1,
          keyId: 9,
          tokenHash: input.nextTokenHash,
          sealed: input.nextSealed,
          rotatedAt: at(MINUTE),
          superseded: [{ generation: 0, at: at(MINUTE), tokenHash: record.tokenHash }],
          expiresAt: input.idleExpiresAt,
          lastUsedAt: at(MINUTE),
        };
        expect(rotated).toEqual(expected);
        expect(await repository.findById(record.id)).toEqual(expected);
      });

      it('returns null and changes nothing when the generation is stale', async () => {
        const record = await saved();
        const first = await repository.rotate(aRotation(record, at(MINUTE)));
        const stale = await repository.rotate(
          aRotation({ ...record, tokenHash: first!.tokenHash }, at(2 * MINUTE)),
        );
        expect(stale).toBeNull();
        expect(await repository.findById(record.id)).toEqual(first);
      });

      it('refuses every earlier generation presented with the current hash, also after many rotations', async () => {
        let record = await saved();
        for (let step = 1; step <= 5; step += 1) {
          record = (await repository.rotate(aRotation(record, at(step * MINUTE))))!;
        }
        for (let stale = 0; stale < 5; stale += 1) {
          const replay = aRotation({ ...record, generation: stale }, at(10 * MINUTE));
          expect(await repository.rotate(replay)).toBeNull();
        }
        expect(await repository.findById(record.id)).toEqual(record);
      });

      it('lets none of many concurrent callers with a stale generation and the current hash win; the current generation still rotates once', async () => {
        const current = (await repository.rotate(aRotation(await saved(), at(MINUTE))))!;
        const stale = await Promise.all(
          Array.from({ length: 20 }, () =>
            repository.rotate(aRotation({ ...current, generation: 0 }, at(2 * MINUTE))),
          ),
        );
        expect(stale.filter((result) => result !== null)).toEqual([]);
        expect(await repository.findById(current.id)).toEqual(current);
        const next = await repository.rotate(aRotation(current, at(3 * MINUTE)));
        expect(next).toMatchObject({
          generation: 2,
          superseded: [
            { generation: 0, at: at(MINUTE), tokenHash: expect.any(String) },
            { generation: 1, at: at(3 * MINUTE), tokenHash: current.tokenHash },
          ],
        });
      });

      it('returns null and changes nothing when the token hash is not the stored one', async () => {
        const record = await saved();
        const forged = aRotation({ ...record, tokenHash: aTokenHash() }, at(MINUTE));
        expect(await repository.rotate(forged)).toBeNull();
        expect(await repository.findById(record.id)).toEqual(record);
      });

      it('returns null and changes nothing for a revoked record', async () => {
        const record = await saved();
        await repository.revokeBySession(record.sessionId, 'logout', { at: at(MINUTE) });
        const before = await repository.findById(record.id);
        expect(await repository.rotate(aRotation(record, at(2 * MINUTE)))).toBeNull();
        expect(await repository.findById(record.id)).toEqual(before);
      });

      it.each([
        ['idle', { expiresAt: at(MINUTE) }],
        ['absolute', { absoluteExpiresAt: at(MINUTE) }],
      ])('returns null and changes nothing at or after the %s expiry', async (_kind, expiry) => {
        const record = await saved(expiry);
        expect(await repository.rotate(aRotation(record, at(MINUTE)))).toBeNull();
        expect(await repository.rotate(aRotation(record, at(2 * MINUTE)))).toBeNull();
        expect(await repository.findById(record.id)).toEqual(record);
      });

      it('returns null for an unknown session', async () => {
        expect(await repository.rotate(aRotation(savedFrom(aNewRecord())))).toBeNull();
      });

      it('never slides the idle expiry past the absolute one, and never moves lastUsedAt back', async () => {
        const record = await saved({ absoluteExpiresAt: at(DAY), lastUsedAt: at(5 * MINUTE) });
        const rotated = await repository.rotate(
          aRotation(record, at(MINUTE), { idleExpiresAt: at(30 * DAY) }),
        );
        expect(rotated).toMatchObject({ expiresAt: at(DAY), lastUsedAt: at(5 * MINUTE) });
        expect(await repository.findById(record.id)).toMatchObject({
          expiresAt: at(DAY),
          lastUsedAt: at(5 * MINUTE),
        });
      });

      it('lets exactly one of many concurrent callers win (or, without atomic find-and-modify, all winners write the same single step)', async () => {
        const record = await saved();
        const input = aRotation(record, at(MINUTE));
        const results = await Promise.all(
          Array.from({ length: 20 }, () => repository.rotate({ ...input })),
        );
        const winners = results.filter((result): result is RefreshTokenRecord => result !== null);
        if (subject.atomicAdvance ?? true) {
          expect(winners).toHaveLength(1);
        } else {
          expect(winners.length).toBeGreaterThanOrEqual(1);
        }
        const final = await repository.findById(record.id);
        expect(final).toMatchObject({
          generation: 1,
          tokenHash: input.nextTokenHash,
          sealed: input.nextSealed,
          revokedAt: null,
        });
        for (const winner of winners) expect(winner).toEqual(final);
      });

      it('keeps the supersede times and token hashes of the last 16 generations, oldest first', async () => {
        let record = await saved();
        const hashes = [record.tokenHash];
        for (let step = 1; step <= 20; step += 1) {
          const next = await repository.rotate(aRotation(record, at(step * MINUTE)));
          expect(next?.generation).toBe(step);
          record = next!;
          hashes.push(record.tokenHash);
        }
        const expected = Array.from({ length: 16 }, (_, index) => ({
          generation: index + 4,
          at: at((index + 5) * MINUTE),
          tokenHash: hashes[index + 4],
        }));
        expect(record.superseded).toEqual(expected);
        expect((await repository.findById(record.id))?.superseded).toEqual(expected);
      });

      it('keeps a supersede list saved with the record, and adds to it', async () => {
        const superseded = [
          { generation: 3, at: at(MINUTE), tokenHash: aTokenHash() },
          { generation: 4, at: at(2 * MINUTE), tokenHash: aTokenHash() },
        ];
        const record = await saved({ generation: 5, superseded });
        expect(record.superseded).toEqual(superseded);
        const next = await repository.rotate(aRotation(record, at(3 * MINUTE)));
        expect(next?.superseded).toEqual([
          ...superseded,
          { generation: 5, at: at(3 * MINUTE), tokenHash: record.tokenHash },
        ]);
      });
    });

    describe('device binding (DBSC)', () => {
      const jwk = { kty: 'EC', crv: 'P-256', x: 'x-coordinate', y: 'y-coordinate' };
      const deviceBinding = (boundUntil: Date) =>
        ({ method: 'dbsc', jkt: 'D'.repeat(43), jwk, boundUntil }) as const;

      async function bound(boundUntil: Date): Promise<RefreshTokenRecord> {
        const record = await saved();
        const result = await repository.bindDevice({
          sessionId: record.sessionId,
          tokenHash: record.tokenHash,
          binding: deviceBinding(boundUntil),
          now: at(0),
        });
        expect(result).toEqual({ ...record, binding: deviceBinding(boundUntil) });
        return result!;
      }

      it('bindDevice binds a live, unbound session holding the hash, keeps the key, and never rebinds', async () => {
        const record = await bound(at(10 * MINUTE));
        expect(await repository.findById(record.id)).toEqual(record);
        const again = await repository.bindDevice({
          sessionId: record.sessionId,
          tokenHash: record.tokenHash,
          binding: { ...deviceBinding(at(DAY)), jkt: 'E'.repeat(43) },
          now: at(MINUTE),
        });
        expect(again).toBeNull();
        expect(await repository.findById(record.id)).toEqual(record);
      });

      it('bindDevice binds nothing for another hash, a revoked, expired or DPoP-bound session', async () => {
        const other = await saved();
        const attempt = (record: RefreshTokenRecord, tokenHash = record.tokenHash, now = at(0)) =>
          repository.bindDevice({
            sessionId: record.sessionId,
            tokenHash,
            binding: deviceBinding(at(DAY)),
            now,
          });
        expect(await attempt(other, aTokenHash())).toBeNull();
        expect(await attempt(other, other.tokenHash, other.expiresAt)).toBeNull();
        await repository.revokeBySession(other.sessionId, 'logout', { at: at(0) });
        expect(await attempt(other)).toBeNull();
        const dpop = await saved({ binding: { method: 'dpop', jkt: 'A'.repeat(43) } });
        expect(await attempt(dpop)).toBeNull();
        expect((await repository.findById(dpop.id))!.binding).toEqual(dpop.binding);
      });

      it('rotate without a proof admits a device-bound record only before its bound lifetime ends, and never moves it', async () => {
        const record = await bound(at(10 * MINUTE));
        const rotated = await repository.rotate(aRotation(record, at(9 * MINUTE)));
        expect(rotated?.generation).toBe(1);
        expect(rotated?.binding).toEqual(deviceBinding(at(10 * MINUTE)));
        expect(await repository.rotate(aRotation(rotated!, at(10 * MINUTE)))).toBeNull();
        expect(
          await repository.rotate(
            aRotation(rotated!, at(9 * MINUTE), { proofJkt: 'D'.repeat(43) }),
          ),
        ).toBeNull();
        expect(await repository.findById(record.id)).toEqual(rotated);
      });

      it('rotate by proof needs the DBSC binding to that key, and then extends the bound lifetime', async () => {
        const record = await bound(at(10 * MINUTE));
        const byOtherKey = aRotation(record, at(20 * MINUTE), {
          dbsc: { jkt: 'E'.repeat(43), boundUntil: at(30 * MINUTE) },
        });
        expect(await repository.rotate(byOtherKey)).toBeNull();
        const unbound = await saved();
        expect(
          await repository.rotate(
            aRotation(unbound, at(MINUTE), {
              dbsc: { jkt: 'D'.repeat(43), boundUntil: at(30 * MINUTE) },
            }),
          ),
        ).toBeNull();
        expect((await repository.findById(unbound.id))!.binding).toBeNull();
        const rotated = await repository.rotate(
          aRotation(record, at(20 * MINUTE), {
            dbsc: { jkt: 'D'.repeat(43), boundUntil: at(30 * MINUTE) },
          }),
        );
        expect(rotated?.generation).toBe(1);
        expect(rotated?.binding).toEqual(deviceBinding(at(30 * MINUTE)));
        expect(await repository.findById(record.id)).toEqual(rotated);
      });
    });

    describe('revocation racing rotation', () => {
      it('revokeBySession is never lost to a concurrent rotate (many rounds)', async () => {
        for (let round = 0; round < 25; round += 1) {
          const record = await saved();
          const rotate = repository.rotate(aRotation(record, at(MINUTE)));
          const revoke = repository.revokeBySession(record.sessionId, 'reuse_detected', {
            at: at(MINUTE),
          });
          const [, revoked] =
            round % 2 === 0
              ? await Promise.all([rotate, revoke])
              : (await Promise.all([revoke, rotate])).reverse();
          expect(revoked).toBe(true);
          const final = await repository.findBySessionId(record.sessionId);
          expect(final).toMatchObject({ revokedAt: at(MINUTE), revokedReason: 'reuse_detected' });
          expect(await repository.rotate(aRotation(final!, at(2 * MINUTE)))).toBeNull();
        }
      });

      it('revokeAllForUser is never lost to concurrent rotations (many rounds)', async () => {
        for (let round = 0; round < 10; round += 1) {
          const userId = `racer-${round}`;
          const records = await Promise.all([
            saved({ userId }),
            saved({ userId }),
            saved({ userId }),
          ]);
          await Promise.all([
            ...records.map((record) => repository.rotate(aRotation(record, at(MINUTE)))),
            repository.revokeAllForUser(userId, 'password_changed', { at: at(MINUTE) }),
          ]);
          for (const record of records) {
            expect(await repository.findById(record.id)).toMatchObject({
              revokedAt: at(MINUTE),
              revokedReason: 'password_changed',
            });
          }
        }
      });
    });

    describe('listActiveForUser', () => {
      it("lists the user's live, unexpired records, newest first", async () => {
        const now = at(10 * DAY);
        const oldest = await saved({ userId: 'alice', createdAt: at(DAY) });
        const newest = await saved({ userId: 'alice', createdAt: at(3 * DAY) });
        const middle = await saved({ userId: 'alice', createdAt: at(2 * DAY) });
        const revoked = await saved({ userId: 'alice', createdAt: at(4 * DAY) });
        await repository.revokeBySession(revoked.sessionId, 'logout');
        await saved({ userId: 'alice', createdAt: at(5 * DAY), expiresAt: now });
        await saved({ userId: 'alice', createdAt: at(5 * DAY), absoluteExpiresAt: at(9 * DAY) });
        await saved({ userId: 'bob', createdAt: at(6 * DAY) });
        const active = await repository.listActiveForUser('alice', now);
        expect(active.map((record) => record.id)).toEqual([newest.id, middle.id, oldest.id]);
        expect(active[0]).toEqual(newest);
      });

      it('returns an empty list for an unknown user', async () => {
        expect(await repository.listActiveForUser('nobody', at(0))).toEqual([]);
      });
    });

    describe('touchMany', () => {
      it('sets lastUsedAt of each session and returns how many changed', async () => {
        const a = await saved();
        const b = await saved();
        const changed = await repository.touchMany([
          { sessionId: a.sessionId, at: at(MINUTE) },
          { sessionId: b.sessionId, at: at(2 * MINUTE) },
        ]);
        expect(changed).toBe(2);
        expect((await repository.findById(a.id))?.lastUsedAt).toEqual(at(MINUTE));
        expect((await repository.findById(b.id))?.lastUsedAt).toEqual(at(2 * MINUTE));
      });

      it('never moves lastUsedAt backwards', async () => {
        const record = await saved({ lastUsedAt: at(5 * MINUTE) });
        expect(await repository.touchMany([{ sessionId: record.sessionId, at: at(MINUTE) }])).toBe(
          0,
        );
        expect((await repository.findById(record.id))?.lastUsedAt).toEqual(at(5 * MINUTE));
      });

      it('keeps the latest of several touches of one session in a batch, whatever their order', async () => {
        const record = await saved();
        await repository.touchMany([
          { sessionId: record.sessionId, at: at(3 * MINUTE) },
          { sessionId: record.sessionId, at: at(MINUTE) },
          { sessionId: record.sessionId, at: at(2 * MINUTE) },
        ]);
        expect((await repository.findById(record.id))?.lastUsedAt).toEqual(at(3 * MINUTE));
      });

      it('counts a record touched several times in one batch once', async () => {
        const record = await saved();
        const changed = await repository.touchMany([
          { sessionId: record.sessionId, at: at(MINUTE) },
          { sessionId: record.sessionId, at: at(2 * MINUTE) },
          { sessionId: record.sessionId, at: at(3 * MINUTE) },
        ]);
        expect(changed).toBe(1);
        expect((await repository.findById(record.id))?.lastUsedAt).toEqual(at(3 * MINUTE));
      });

      it('ignores unknown sessions and accepts an empty batch', async () => {
        const record = await saved();
        const changed = await repository.touchMany([
          { sessionId: aNewRecord().sessionId, at: at(MINUTE) },
          { sessionId: record.sessionId, at: at(MINUTE) },
        ]);
        expect(changed).toBe(1);
        expect(await repository.touchMany([])).toBe(0);
      });
    });

    describe('deleteExpired', () => {
      it('deletes idle-expired, absolute-expired and long-revoked records and leaves live ones', async () => {
        const before = at(40 * DAY);
        const idle = await saved({ expiresAt: at(DAY) });
        const absolute = await saved({ absoluteExpiresAt: at(2 * DAY), expiresAt: at(2 * DAY) });
        const revokedLongAgo = await saved({ expiresAt: at(60 * DAY) });
        await repository.revokeBySession(revokedLongAgo.sessionId, 'logout', { at: at(DAY) });
        const revokedRecently = await saved({ expiresAt: at(60 * DAY) });
        await repository.revokeBySession(revokedRecently.sessionId, 'logout', { at: at(50 * DAY) });
        const live = await saved({ expiresAt: at(60 * DAY) });

        expect(await repository.deleteExpired({ before, limit: 100 })).toBe(3);
        for (const gone of [idle, absolute, revokedLongAgo])
          expect(await repository.findById(gone.id)).toBeNull();
        expect(await repository.findById(live.id)).toEqual(live);
        expect(await repository.findById(revokedRecently.id)).not.toBeNull();
      });

      it('deletes at most `limit` records per call', async () => {
        for (let i = 0; i < 5; i += 1) await saved({ expiresAt: at(DAY) });
        const live = await saved({ expiresAt: at(60 * DAY) });
        const before = at(40 * DAY);
        const batches: number[] = [];
        for (let call = 0; call < 4; call += 1)
          batches.push(await repository.deleteExpired({ before, limit: 2 }));
        expect(batches).toEqual([2, 2, 1, 0]);
        expect(await repository.findById(live.id)).toEqual(live);
      });
    });
  });
}
