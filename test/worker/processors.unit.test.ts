import { UnrecoverableError } from 'bullmq';
import {
  parseRevokeAllPayload,
  parseTouchPayload,
  revokeAllJobId,
  toRevokeAllPayload,
  toTouchPayload,
} from '../../src/adapters/bullmq/jobs';
import { BullMQTokenJobs } from '../../src/adapters/bullmq';
import { TouchCoalescer } from '../../src/adapters/bullmq/touch-coalescer';
import { MemoryRefreshTokenRepository } from '../../src/adapters/memory';
import { InvalidRequestError, OptionsError } from '../../src/domain/errors';
import type { Touch } from '../../src/domain/refresh-token';
import type { TouchJob } from '../../src/domain/token-jobs';
import { runCleanup } from '../../src/adapters/bullmq-worker/processors/cleanup';
import { createRevokeAllProcessor } from '../../src/adapters/bullmq-worker/processors/revoke-all';
import { createTouchProcessor } from '../../src/adapters/bullmq-worker/processors/touch';
import { TouchBatcher } from '../../src/adapters/bullmq-worker/processors/touch-batcher';
import { aNewRecord } from '../support/builders';
import { EPOCH, FakeClock } from '../support/fake-clock';
import { withOutage } from '../support/outage-repository';

const DAY = 86_400_000;
const at = (ms: number) => new Date(EPOCH.getTime() + ms);

describe('job payloads', () => {
  it('round-trip through JSON with ids and ISO times only', () => {
    const revoke = { userId: 'u1', reason: 'password_changed', requestedAt: at(5) };
    const wire = JSON.parse(JSON.stringify(toRevokeAllPayload(revoke))) as unknown;
    expect(wire).toEqual({
      userId: 'u1',
      reason: 'password_changed',
      requestedAt: at(5).toISOString(),
    });
    expect(parseRevokeAllPayload(wire)).toEqual(revoke);
    const touch = { sessionId: 'ab'.repeat(16), at: at(7) };
    expect(parseTouchPayload(JSON.parse(JSON.stringify(toTouchPayload(touch))))).toEqual(touch);
  });

  it.each([
    ['not an object', 'x'],
    ['no userId', { reason: 'r', requestedAt: at(0).toISOString() }],
    ['an empty reason', { userId: 'u', reason: '', requestedAt: at(0).toISOString() }],
    ['a non-ISO time', { userId: 'u', reason: 'r', requestedAt: 'yesterday' }],
    ['an epoch number', { userId: 'u', reason: 'r', requestedAt: 1_700_000_000_000 }],
  ])('a revoke-all payload with %s is refused as InvalidRequestError', (_, data) => {
    expect(() => parseRevokeAllPayload(data)).toThrow(InvalidRequestError);
  });

  it('gives the same revoke-all the same job id, and a different request another', () => {
    const job = { userId: 'u1', requestedAt: at(1) };
    expect(revokeAllJobId(job)).toBe(revokeAllJobId({ ...job }));
    expect(revokeAllJobId(job)).not.toBe(revokeAllJobId({ ...job, requestedAt: at(2) }));
    expect(revokeAllJobId(job)).not.toBe(revokeAllJobId({ ...job, userId: 'u2' }));
    expect(revokeAllJobId({ userId: 'a:b:c', requestedAt: at(1) })).toMatch(
      /^revoke-all-[0-9a-f]{40}$/,
    );
  });
});

describe('revoke-all processor', () => {
  it('revokes the records created before requestedAt, once, and spares a later login', async () => {
    const repository = new MemoryRefreshTokenRepository();
    const old = await repository.save(aNewRecord({ userId: 'u1', createdAt: at(0) }));
    const later = await repository.save(aNewRecord({ userId: 'u1', createdAt: at(2_000) }));
    const other = await repository.save(aNewRecord({ userId: 'u2', createdAt: at(0) }));
    const process = createRevokeAllProcessor(repository);
    const data = toRevokeAllPayload({
      userId: 'u1',
      reason: 'password_changed',
      requestedAt: at(1_000),
    });

    await expect(process({ data })).resolves.toEqual({ revoked: 1 });
    await expect(process({ data })).resolves.toEqual({ revoked: 0 });

    expect(await repository.findById(old.id)).toMatchObject({
      revokedAt: at(1_000),
      revokedReason: 'password_changed',
    });
    expect(await repository.findById(later.id)).toMatchObject({ revokedAt: null });
    expect(await repository.findById(other.id)).toMatchObject({ revokedAt: null });
  });

  it('rejects with the repository error (a retryable failure, not a completed job), and the retry revokes once the store is back', async () => {
    const store = new MemoryRefreshTokenRepository();
    const record = await store.save(aNewRecord({ userId: 'u1', createdAt: at(0) }));
    const outage = withOutage(store);
    const process = createRevokeAllProcessor(outage.repository);
    const data = toRevokeAllPayload({
      userId: 'u1',
      reason: 'admin_action',
      requestedAt: at(1_000),
    });

    outage.fail(new Error('socket closed'));
    const failure: unknown = await process({ data }).then(
      (result) => new Error(`expected a rejection, got ${JSON.stringify(result)}`),
      (error: unknown) => error,
    );
    expect(failure).toEqual(new Error('socket closed'));
    expect(failure).not.toBeInstanceOf(UnrecoverableError);
    expect(outage.refused).toEqual(['revokeAllForUser']);
    expect(await store.findById(record.id)).toMatchObject({ revokedAt: null });

    outage.recover();
    await expect(process({ data })).resolves.toEqual({ revoked: 1 });
    expect(await store.findById(record.id)).toMatchObject({
      revokedAt: at(1_000),
      revokedReason: 'admin_action',
    });
  });

  it('fails a malformed payload without retries (UnrecoverableError)', async () => {
    const process = createRevokeAllProcessor(new MemoryRefreshTokenRepository());
    await expect(process({ data: { userId: 'u1' } })).rejects.toBeInstanceOf(UnrecoverableError);
  });
});

/** A repository double that counts and can fail `touchMany` (a pure unit: no store behind it). */
class CountingTouches extends MemoryRefreshTokenRepository {
  readonly calls: Touch[][] = [];
  failNext = false;
  gate: Promise<void> | null = null;

  override async touchMany(touches: readonly Touch[]): Promise<number> {
    this.calls.push([...touches]);
    await this.gate;
    if (this.failNext) {
      this.failNext = false;
      throw new Error('write failed');
    }
    return super.touchMany(touches);
  }
}

describe('touch processor', () => {
  it('coalesces concurrent jobs into one touchMany with the latest time per session', async () => {
    const repository = new CountingTouches();
    const a = await repository.save(aNewRecord());
    const b = await repository.save(aNewRecord());
    const batcher = new TouchBatcher(repository, { maxBatch: 100, flushAfterMs: 5 });
    const process = createTouchProcessor(batcher);
    const jobs = [at(3), at(9), at(1)].flatMap((time) => [
      { data: toTouchPayload({ sessionId: a.sessionId, at: time }) },
      { data: toTouchPayload({ sessionId: b.sessionId, at: new Date(time.getTime() + 1) }) },
    ]);

    await Promise.all(jobs.map((job) => process(job)));

    expect(repository.calls).toHaveLength(1);
    expect(repository.calls[0]).toHaveLength(6);
    expect(batcher.stats()).toMatchObject({ touches: 6, writes: 1, recordsChanged: 2 });
    expect((await repository.findById(a.id))?.lastUsedAt).toEqual(at(9));
    expect((await repository.findById(b.id))?.lastUsedAt).toEqual(at(10));
  });

  it('writes a full batch at once, without waiting for the timer', async () => {
    const repository = new CountingTouches();
    const batcher = new TouchBatcher(repository, { maxBatch: 3, flushAfterMs: 60_000 });
    const done = [1, 2, 3, 4, 5, 6].map((n) => batcher.add({ sessionId: `s${n}`, at: at(n) }));
    await Promise.all(done);
    expect(repository.calls.map((call) => call.length)).toEqual([3, 3]);
    expect(batcher.stats()).toMatchObject({ touches: 6, writes: 2, failedWrites: 0 });
  });

  it('resolves a job only once the write that carries it has finished', async () => {
    const repository = new CountingTouches();
    let release = () => undefined as void;
    repository.gate = new Promise<void>((resolve) => (release = resolve));
    const batcher = new TouchBatcher(repository, { maxBatch: 10, flushAfterMs: 1 });
    let settled = false;
    const job = batcher.add({ sessionId: 's1', at: at(1) }).then(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(repository.calls).toHaveLength(1);
    expect(settled).toBe(false);
    release();
    await job;
    expect(settled).toBe(true);
  });

  it('rejects every job of a failed write, and a later write succeeds', async () => {
    const repository = new CountingTouches();
    repository.failNext = true;
    const batcher = new TouchBatcher(repository, { maxBatch: 10, flushAfterMs: 1 });
    const results = await Promise.allSettled([
      batcher.add({ sessionId: 's1', at: at(1) }),
      batcher.add({ sessionId: 's2', at: at(2) }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    await expect(batcher.add({ sessionId: 's1', at: at(3) })).resolves.toBeUndefined();
    expect(batcher.stats()).toMatchObject({ writes: 2, failedWrites: 1 });
  });

  it('fails a malformed payload without retries', async () => {
    const process = createTouchProcessor(
      new TouchBatcher(new CountingTouches(), { maxBatch: 1, flushAfterMs: 1 }),
    );
    await expect(process({ data: { sessionId: 's1', at: 'now' } })).rejects.toBeInstanceOf(
      UnrecoverableError,
    );
  });
});

describe('cleanup', () => {
  async function seed(repository: MemoryRefreshTokenRepository, clock: FakeClock) {
    const now = clock.now().getTime();
    const expired = Array.from({ length: 25 }, () =>
      aNewRecord({
        createdAt: new Date(now - 100 * DAY),
        expiresAt: new Date(now - 8 * DAY),
        absoluteExpiresAt: new Date(now + DAY),
      }),
    );
    const recentlyExpired = aNewRecord({
      createdAt: new Date(now - 40 * DAY),
      expiresAt: new Date(now - DAY),
    });
    const live = Array.from({ length: 5 }, () =>
      aNewRecord({ createdAt: new Date(now), expiresAt: new Date(now + DAY) }),
    );
    for (const record of [...expired, recentlyExpired, ...live]) await repository.save(record);
    return { expired, recentlyExpired, live };
  }

  it('deletes records past the retention in batches of the given size until none is left', async () => {
    const clock = new FakeClock(at(400 * DAY));
    const repository = new MemoryRefreshTokenRepository({ clock });
    const { recentlyExpired, live } = await seed(repository, clock);

    const result = await runCleanup(repository, {
      retentionMs: 7 * DAY,
      batchSize: 10,
      timeBudgetMs: 60_000,
      clock,
    });

    expect(result).toMatchObject({ deleted: 25, batches: 4, stoppedBy: 'done' });
    expect(await repository.findById(recentlyExpired.id)).not.toBeNull();
    for (const record of live) expect(await repository.findById(record.id)).not.toBeNull();
  });

  it('stops after the current batch when the worker is shutting down', async () => {
    const clock = new FakeClock(at(400 * DAY));
    const repository = new MemoryRefreshTokenRepository({ clock });
    await seed(repository, clock);
    const stop = new AbortController();
    stop.abort();
    const result = await runCleanup(repository, {
      retentionMs: 7 * DAY,
      batchSize: 10,
      timeBudgetMs: 60_000,
      clock,
      stopSignal: stop.signal,
    });
    expect(result).toMatchObject({ deleted: 10, batches: 1, stoppedBy: 'shutdown' });
  });
});

describe('TouchCoalescer (per-process fold before Redis)', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('sends the first touch at once and the latest of the rest when the interval ends', async () => {
    const sent: TouchJob[] = [];
    let folded = 0;
    const coalescer = new TouchCoalescer(
      async (job) => void sent.push(job),
      () => (folded += 1),
      () => undefined,
      1_000,
      100,
    );
    await coalescer.touch({ sessionId: 's1', at: at(1) });
    await coalescer.touch({ sessionId: 's1', at: at(5) });
    await coalescer.touch({ sessionId: 's1', at: at(3) });
    expect(sent).toEqual([{ sessionId: 's1', at: at(1) }]);

    jest.advanceTimersByTime(1_000);
    expect(sent).toEqual([
      { sessionId: 's1', at: at(1) },
      { sessionId: 's1', at: at(5) },
    ]);
    // Three calls: two sent, one (at 3, superseded by at 5) folded away.
    expect(folded).toBe(1);
    expect(sent.length + folded).toBe(3);

    jest.advanceTimersByTime(1_000);
    await coalescer.touch({ sessionId: 's1', at: at(9) });
    expect(sent).toHaveLength(3);
  });

  it('accounts for every touch once: sent or superseded, however the intervals fall', async () => {
    const sent: TouchJob[] = [];
    let superseded = 0;
    const coalescer = new TouchCoalescer(
      async (job) => void sent.push(job),
      () => (superseded += 1),
      () => undefined,
      1_000,
      100,
    );
    let calls = 0;
    for (let round = 0; round < 7; round += 1) {
      for (let i = 0; i < 5; i += 1) {
        await coalescer.touch({ sessionId: `s${i % 3}`, at: at(round * 10 + i) });
        calls += 1;
      }
      jest.advanceTimersByTime(round % 2 === 0 ? 1_000 : 400);
    }
    await coalescer.flush();
    expect(sent.length + superseded).toBe(calls);
  });

  it('tracks at most maxSessions sessions and sends the others directly', async () => {
    const sent: TouchJob[] = [];
    const coalescer = new TouchCoalescer(
      async (job) => void sent.push(job),
      () => undefined,
      () => undefined,
      1_000,
      1,
    );
    await coalescer.touch({ sessionId: 's1', at: at(1) });
    await coalescer.touch({ sessionId: 's2', at: at(2) });
    await coalescer.touch({ sessionId: 's2', at: at(3) });
    await coalescer.touch({ sessionId: 's1', at: at(4) });
    expect(sent.map((job) => job.sessionId)).toEqual(['s1', 's2', 's2']);
    await coalescer.flush();
    expect(sent.map((job) => job.sessionId)).toEqual(['s1', 's2', 's2', 's1']);
  });

  it('reports a failed background send instead of throwing it', async () => {
    const errors: unknown[] = [];
    let fail = false;
    const coalescer = new TouchCoalescer(
      async () => {
        if (fail) throw new Error('redis down');
      },
      () => undefined,
      (error) => errors.push(error),
      1_000,
      10,
    );
    await coalescer.touch({ sessionId: 's1', at: at(1) });
    await coalescer.touch({ sessionId: 's1', at: at(2) });
    fail = true;
    await jest.advanceTimersByTimeAsync(1_000);
    expect(errors).toHaveLength(1);
  });
});

describe('BullMQTokenJobs options', () => {
  // Validation happens before any connection is opened, so these need no Redis.
  it.each([
    [
      'a prefix with a colon',
      { prefix: 'rr:prod' },
      /prefix must be a non-empty string without ':'/,
    ],
    ['a touch window that is not a duration', { touchWindow: 'soon' }, /touchWindow must be/],
    ['a zero enqueue timeout', { enqueueTimeout: 0 }, /enqueueTimeout must be at least 1 ms/],
    ['a negative fold interval', { coalesceInterval: -1 }, /coalesceInterval must not be negative/],
    [
      'a fractional session bound',
      { maxCoalescedSessions: 1.5 },
      /maxCoalescedSessions must be a positive integer/,
    ],
  ])('refuses %s with OptionsError', (_, options, message) => {
    const create = () => new BullMQTokenJobs({ connection: 'redis://127.0.0.1:1', ...options });
    expect(create).toThrow(OptionsError);
    expect(create).toThrow(message);
  });
});
