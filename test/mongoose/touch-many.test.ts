import { MongooseRefreshTokenRepository } from '../../src/adapters/mongoose';
import { aNewRecord } from '../support/builders';
import { EPOCH } from '../support/fake-clock';
import { openTestDatabase } from '../support/services';

let db: Awaited<ReturnType<typeof openTestDatabase>>;

beforeAll(async () => {
  db = await openTestDatabase();
});

afterAll(async () => {
  await db.close();
});

it('touchMany over 120 sessions (more than one update command can carry on FerretDB) sets every lastUsedAt', async () => {
  const repository = new MongooseRefreshTokenRepository(db.connection);
  await repository.ensureIndexes();
  const records = await Promise.all(
    Array.from({ length: 120 }, () => repository.save(aNewRecord())),
  );
  const at = new Date(EPOCH.getTime() + 60_000);

  const changed = await repository.touchMany(records.map(({ sessionId }) => ({ sessionId, at })));

  expect(changed).toBe(120);
  const reloaded = await Promise.all(records.map(({ id }) => repository.findById(id)));
  expect(reloaded.map((record) => record?.lastUsedAt?.getTime())).toEqual(
    records.map(() => at.getTime()),
  );
}, 60_000);
