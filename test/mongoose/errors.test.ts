/**
 * The one table that turns driver failures into the port's errors, checked with the driver's own
 * error classes, and with real failures from the test server where one can be provoked.
 */
import mongoose from 'mongoose';
import { isDuplicateKeyError, isUnavailableError, toStoreError } from '../../src/adapters/mongoose';
import { ConflictError, NotFoundError, StoreUnavailableError } from '../../src/domain/errors';
import { openTestDatabase, uniqueName } from '../support/services';

const { mongo } = mongoose;

function serverError(code: number, message = `server error ${code}`) {
  return new mongo.MongoServerError({ message, code, ok: 0 });
}

describe('toStoreError', () => {
  it.each([
    ['MongoNetworkError', new mongo.MongoNetworkError('connect ECONNREFUSED 127.0.0.1:27017')],
    ['MongoNetworkTimeoutError', new mongo.MongoNetworkTimeoutError('socket timed out')],
    ['MongoTopologyClosedError', new mongo.MongoTopologyClosedError()],
    ['MongoNotConnectedError', new mongo.MongoNotConnectedError('not connected')],
    ['MongoOperationTimeoutError', new mongo.MongoOperationTimeoutError('timed out')],
    ['MaxTimeMSExpired (50)', serverError(50)],
    ['NotWritablePrimary (10107)', serverError(10107)],
    ['ShutdownInProgress (91)', serverError(91)],
    [
      'Mongoose buffering timeout',
      new mongoose.Error('Operation `x.findOne()` buffering timed out after 10000ms'),
    ],
  ])('maps %s to StoreUnavailableError and keeps the cause', (_name, error) => {
    const mapped = toStoreError(error, 'findBySessionId');
    expect(mapped).toBeInstanceOf(StoreUnavailableError);
    expect(mapped).toMatchObject({ code: 'store_unavailable', cause: error });
    expect((mapped as Error).message).toMatch(
      /^findBySessionId: the MongoDB server is unavailable/,
    );
  });

  it('maps a duplicate key (11000) to ConflictError, also inside a bulk write and as FerretDB reports it on update', () => {
    const duplicates = [
      serverError(11000, 'E11000 duplicate key error collection: db.refresh_tokens'),
      Object.assign(new mongo.MongoServerError({ message: 'bulk', ok: 0 }), {
        writeErrors: [{ code: 11000, errmsg: 'E11000' }],
      }),
      serverError(1, "constraint failed: UNIQUE constraint failed: index 't_sessionId_1' (2067)"),
    ];
    for (const error of duplicates) {
      expect(isDuplicateKeyError(error)).toBe(true);
      expect(toStoreError(error, 'save')).toEqual(expect.any(ConflictError));
      expect(toStoreError(error, 'save')).toMatchObject({ code: 'conflict', cause: error });
    }
  });

  it("passes this library's errors and unrelated errors through unchanged", () => {
    const notFound = new NotFoundError('no refresh token record with id x');
    const bug = new TypeError('cannot read properties of undefined');
    const badQuery = serverError(2, 'BadValue');
    expect(toStoreError(notFound, 'delete')).toBe(notFound);
    expect(toStoreError(bug, 'delete')).toBe(bug);
    expect(toStoreError(badQuery, 'delete')).toBe(badQuery);
    expect(isUnavailableError(badQuery)).toBe(false);
    expect(isDuplicateKeyError(serverError(1, 'internal error'))).toBe(false);
  });
});

describe('real failures from the server', () => {
  it('a duplicate key from the server is recognised as such', async () => {
    const db = await openTestDatabase();
    try {
      const collection = db.connection.db!.collection(uniqueName('dup'));
      await collection.createIndex({ key: 1 }, { unique: true });
      await collection.insertOne({ key: 'a' });
      const error = await collection.insertOne({ key: 'a' }).catch((e: unknown) => e);
      expect(toStoreError(error, 'save')).toBeInstanceOf(ConflictError);
    } finally {
      await db.close();
    }
  });

  it('a server selection timeout from an unreachable server is store_unavailable', async () => {
    const client = new mongo.MongoClient('mongodb://127.0.0.1:1', {
      serverSelectionTimeoutMS: 200,
    });
    try {
      const error = await client
        .db('x')
        .command({ ping: 1 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(mongo.MongoServerSelectionError);
      expect(toStoreError(error, 'findById')).toBeInstanceOf(StoreUnavailableError);
    } finally {
      await client.close();
    }
  });
});
