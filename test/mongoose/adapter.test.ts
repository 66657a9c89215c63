/**
 * What the Mongoose adapters promise beyond the port contract: indexes, collection names, the
 * caller's connection left alone, the stored shape, the version cache, the revocation notes.
 */
import mongoose from 'mongoose';
import { MongooseRefreshTokenRepository, MongooseVersionStore } from '../../src/adapters/mongoose';
import { OptionsError } from '../../src/domain/errors';
import { isFerretDbServer } from '../contract/mongoose-subject';
import { aNewRecord } from '../support/builders';
import { EPOCH, FakeClock } from '../support/fake-clock';
import { openTestDatabase, uniqueName } from '../support/services';

let db: Awaited<ReturnType<typeof openTestDatabase>>;
let ferret: boolean;

beforeAll(async () => {
  db = await openTestDatabase();
  ferret = await isFerretDbServer(db.connection);
});

afterAll(async () => {
  await db.close();
});

async function indexesOf(collectionName: string) {
  const indexes = await db.connection.db!.collection(collectionName).indexes();
  return Object.fromEntries(
    indexes.map((index) => [
      index.name,
      { key: index.key, unique: index.unique ?? false, ttl: index.expireAfterSeconds },
    ]),
  );
}

describe('ensureIndexes', () => {
  it('creates unique id and tokenHash, userId+createdAt, and the three deleteExpired indexes, idempotently', async () => {
    const collectionName = uniqueName('indexes');
    const repository = new MongooseRefreshTokenRepository(db.connection, { collectionName });
    await repository.ensureIndexes();
    await repository.ensureIndexes();
    expect(await indexesOf(collectionName)).toMatchObject({
      _id_: { key: { _id: 1 } },
      id_1: { key: { id: 1 }, unique: true },
      tokenHash_1: { key: { tokenHash: 1 }, unique: true },
      'userId_1_createdAt_-1': { key: { userId: 1, createdAt: -1 }, unique: false },
      expiresAt_1: { key: { expiresAt: 1 }, unique: false, ttl: undefined },
      absoluteExpiresAt_1: { key: { absoluteExpiresAt: 1 }, unique: false },
      revokedAt_1: { key: { revokedAt: 1 }, unique: false },
    });
  });

  it('the optional TTL index is created on MongoDB and refused with OptionsError on FerretDB', async () => {
    const collectionName = uniqueName('ttl');
    const repository = new MongooseRefreshTokenRepository(db.connection, {
      collectionName,
      ttlAfterExpirySeconds: 3_600,
    });
    if (ferret) {
      await expect(repository.ensureIndexes()).rejects.toThrow(OptionsError);
      await expect(repository.ensureIndexes()).rejects.toThrow(/TTL index/);
    } else {
      await repository.ensureIndexes();
      expect((await indexesOf(collectionName)).expiresAt_1).toMatchObject({ ttl: 3_600 });
    }
  });
});

describe("the caller's connection", () => {
  it('is used as is: no new connection, no global model, and a second adapter reuses the registered model', async () => {
    const before = {
      connections: mongoose.connections.length,
      globalModels: mongoose.modelNames(),
    };
    const collectionName = uniqueName('shared');
    const first = new MongooseRefreshTokenRepository(db.connection, { collectionName });
    const second = new MongooseRefreshTokenRepository(db.connection, { collectionName });
    const record = await first.save(aNewRecord());
    expect(await second.findById(record.id)).toEqual(record);
    expect(db.connection.modelNames()).toContain(`refresh-rotation:${collectionName}`);
    expect(mongoose.connections.length).toBe(before.connections);
    expect(mongoose.modelNames()).toEqual(before.globalModels);
    expect(db.connection.readyState).toBe(mongoose.ConnectionStates.connected);
  });

  it('stores records in `refresh_tokens` by default, keyed by session id (_id), with no plaintext token or version key', async () => {
    const repository = new MongooseRefreshTokenRepository(db.connection);
    const record = await repository.save(aNewRecord({ client: {} }));
    const stored = await db.connection
      .db!.collection('refresh_tokens')
      .findOne({ _id: record.sessionId as never });
    expect(stored).toMatchObject({ id: record.id, tokenHash: record.tokenHash, revokedAt: null });
    expect(Object.keys(stored!).sort()).toEqual(
      [
        '_id',
        'id',
        'userId',
        'generation',
        'keyId',
        'tokenHash',
        'sealed',
        'tokenVersion',
        'globalVersionAtIssuance',
        'createdAt',
        'rotatedAt',
        'superseded',
        'lastUsedAt',
        'expiresAt',
        'absoluteExpiresAt',
        'revokedAt',
        'revokedReason',
        'binding',
      ].sort(),
    );
    expect((await repository.findById(record.id))?.client).toEqual({});
  });

  it('rejects invalid options with OptionsError naming the option', () => {
    expect(
      () => new MongooseRefreshTokenRepository(db.connection, { collectionName: ' ' }),
    ).toThrow(/collectionName/);
    expect(
      () => new MongooseRefreshTokenRepository(db.connection, { revocationGuard: 'maybe' as 'on' }),
    ).toThrow(OptionsError);
    expect(
      () => new MongooseRefreshTokenRepository(db.connection, { ttlAfterExpirySeconds: -1 }),
    ).toThrow(/ttlAfterExpirySeconds/);
    // The store cached versions once; the one cache is now the service's revocationCache.
    expect(() => new MongooseVersionStore(db.connection, { cacheTtlMs: 1_000 } as never)).toThrow(
      /cacheTtlMs is gone: set RotationService's revocationCache/,
    );
  });
});

describe('findByTokenVerification', () => {
  it('streams records and stops at the first match instead of reading the whole collection', async () => {
    const repository = new MongooseRefreshTokenRepository(db.connection, {
      collectionName: uniqueName('scan'),
    });
    for (let i = 0; i < 250; i += 1) await repository.save(aNewRecord());
    const seen: string[] = [];
    const found = await repository.findByTokenVerification('token', (_token, hash) => {
      seen.push(hash);
      return seen.length === 3;
    });
    expect(seen).toHaveLength(3);
    expect(found?.tokenHash).toBe(seen[2]);
  });
});

describe('revocation notes (the guard, on for FerretDB, or forced on)', () => {
  it('revocations leave notes that deleteExpired prunes once they are older than ten minutes', async () => {
    const clock = new FakeClock(EPOCH);
    const collectionName = uniqueName('notes');
    const repository = new MongooseRefreshTokenRepository(db.connection, {
      collectionName,
      revocationGuard: 'on',
      clock,
    });
    await repository.ensureIndexes();
    const a = await repository.save(aNewRecord({ userId: 'alice' }));
    await repository.save(aNewRecord({ userId: 'bob' }));
    await repository.revokeBySession(a.sessionId, 'logout');
    await repository.revokeAllForUser('bob', 'password_changed');
    const notes = db.connection.db!.collection(`${collectionName}_revocations`);
    expect(await notes.countDocuments()).toBe(2);

    clock.advance('9m');
    await repository.deleteExpired({ before: clock.now(), limit: 10 });
    expect(await notes.countDocuments()).toBe(2);
    clock.advance('2m');
    await repository.deleteExpired({ before: clock.now(), limit: 10 });
    expect(await notes.countDocuments()).toBe(0);
  });

  it('with the guard off, revocations write no notes', async () => {
    const collectionName = uniqueName('nonotes');
    const repository = new MongooseRefreshTokenRepository(db.connection, {
      collectionName,
      revocationGuard: 'off',
    });
    const record = await repository.save(aNewRecord());
    expect(await repository.revokeBySession(record.sessionId, 'logout')).toBe(true);
    expect(
      await db.connection.db!.collection(`${collectionName}_revocations`).countDocuments(),
    ).toBe(0);
  });
});

describe('MongooseVersionStore reads', () => {
  function twoProcesses() {
    const collectionName = uniqueName('versions');
    return {
      reader: new MongooseVersionStore(db.connection, { collectionName }),
      other: new MongooseVersionStore(db.connection, { collectionName }),
    };
  }

  it("sees another process's bumps at once: the store keeps no cache (the service's revocationCache is the one)", async () => {
    const { reader, other } = twoProcesses();
    expect(await reader.getUserMinVersion('alice')).toBe(0);
    expect((await reader.getGlobal()).minVersion).toBe(0);
    await other.bumpUserMinVersion('alice');
    await other.bumpGlobal({ reason: 'breach', gracePeriodMs: 0, at: EPOCH });
    expect(await reader.getUserMinVersion('alice')).toBe(1);
    expect((await reader.getGlobal()).minVersion).toBe(1);
    expect(await reader.bumpUserMinVersion('alice')).toBe(2);
    expect(await other.getUserMinVersion('alice')).toBe(2);
  });

  it('keeps user ids apart even when one is a prefix of another or contains the separator', async () => {
    const { reader } = twoProcesses();
    await reader.bumpUserMinVersion('al');
    await reader.bumpUserMinVersion('al:1');
    await reader.bumpUserMinVersion('al:1');
    expect(await reader.getUserMinVersion('al')).toBe(1);
    expect(await reader.getUserMinVersion('al:1')).toBe(2);
    expect(await reader.getUserMinVersion('alice')).toBe(0);
  });
});
