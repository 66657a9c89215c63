import { Queue, QueueEvents, Worker } from 'bullmq';
import { openTestDatabase, openTestRedis, uniqueName } from '../support/services';

describe('the test services are real servers', () => {
  it('MongoDB-wire: a unique index makes a duplicate insert fail with code 11000', async () => {
    const db = await openTestDatabase();
    try {
      const collection = db.connection.collection('smoke');
      await collection.createIndex({ key: 1 }, { unique: true });
      await collection.insertOne({ key: 'a' });
      await expect(collection.insertOne({ key: 'a' })).rejects.toMatchObject({ code: 11000 });
      expect(await collection.countDocuments()).toBe(1);
    } finally {
      await db.close();
    }
  });

  it('Redis: a BullMQ job runs through a real Worker and completes with its result', async () => {
    const connection = openTestRedis();
    const prefix = uniqueName('rr_smoke');
    const queue = new Queue('smoke', { connection, prefix });
    const eventsConnection = openTestRedis();
    const workerConnection = openTestRedis();
    const events = new QueueEvents('smoke', { connection: eventsConnection, prefix });
    const worker = new Worker('smoke', async (job) => (job.data as { n: number }).n * 2, {
      connection: workerConnection,
      prefix,
    });
    try {
      await events.waitUntilReady();
      const job = await queue.add('double', { n: 21 });
      await expect(job.waitUntilFinished(events, 10_000)).resolves.toBe(42);
      expect(await queue.getJobCounts('completed')).toEqual({ completed: 1 });
    } finally {
      await worker.close();
      await events.close();
      await queue.obliterate({ force: true });
      await queue.close();
      for (const client of [connection, eventsConnection, workerConnection]) client.disconnect();
    }
  });
});
