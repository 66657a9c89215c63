/**
 * Contract subjects on the test MongoDB-wire server: one database per test file (opened by
 * `useMongooseSubjects()` in `beforeAll`), fresh collections per test, dropped by `close()`.
 */
import type { Connection } from 'mongoose';
import { MongooseRefreshTokenRepository, MongooseVersionStore } from '../../src/adapters/mongoose';
import { openTestDatabase, uniqueName } from '../support/services';
import type { ContractFactory } from './contract-subject';

/** Whether the server is FerretDB (find-and-modify not atomic there). */
export async function isFerretDbServer(connection: Connection): Promise<boolean> {
  const info = await connection.db!.admin().command({ buildInfo: 1 });
  return 'ferretdbVersion' in info;
}

/** Registers beforeAll/afterAll for this file's database and returns the per-test factory. */
export function useMongooseSubjects(): ContractFactory {
  let db: Awaited<ReturnType<typeof openTestDatabase>> | undefined;
  let ferret = false;

  beforeAll(async () => {
    db = await openTestDatabase();
    ferret = await isFerretDbServer(db.connection);
  });

  afterAll(async () => {
    await db?.close();
  });

  return async () => {
    if (!db) throw new Error('useMongooseSubjects: the database is not open (beforeAll failed?)');
    const { connection } = db;
    const collectionName = uniqueName('tokens');
    const versionsName = uniqueName('versions');
    const repository = new MongooseRefreshTokenRepository(connection, { collectionName });
    await repository.ensureIndexes();
    const versions = new MongooseVersionStore(connection, { collectionName: versionsName });
    return {
      repository,
      versions,
      atomicAdvance: !ferret,
      close: async () => {
        for (const name of [collectionName, `${collectionName}_revocations`, versionsName]) {
          await connection.dropCollection(name).catch(() => undefined);
          if (connection.models[`refresh-rotation:${name}`]) {
            connection.deleteModel(`refresh-rotation:${name}`);
          }
        }
      },
    };
  };
}
