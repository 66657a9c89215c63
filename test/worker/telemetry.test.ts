/**
 * One trace for a password change (issue 24, item 2): the caller's request span, the service's
 * `refresh-rotation.revoke_all`, BullMQ's producer span for the revoke-all job and the worker's
 * consumer span, in this order of parents, under a real SDK (sdk-trace, in-memory exporter,
 * async-hooks context, the W3C propagator), with `bullmq-otel` given to `BullMQTokenJobs` and `startTokenWorkers`
 * on real Redis and the MongoDB-wire server. No token of the session appears in any span.
 */
import { context, propagation, trace, type SpanContext } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace';
import { BullMQOtel } from 'bullmq-otel';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { BullMQTokenJobs } from '../../src/adapters/bullmq';
import {
  DEFAULT_CLEANUP,
  startTokenWorkers,
  type TokenWorkers,
} from '../../src/adapters/bullmq-worker';
import { MongooseRefreshTokenRepository, MongooseVersionStore } from '../../src/adapters/mongoose';
import { tracingReady } from '../../src/adapters/opentelemetry/otel-tracing';
import { RotationService } from '../../src/rotation-service';
import { ACCESS_SECRET, REFRESH_SECRET } from '../support/secrets';
import { openTestDatabase, redisUrl, uniqueName } from '../support/services';
import { waitFor } from '../support/wait-for';

const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
const contextManager = new AsyncLocalStorageContextManager().enable();

let db: Awaited<ReturnType<typeof openTestDatabase>>;
let producerRedis: Redis;
let workerRedis: Redis;
let jobs: BullMQTokenJobs;
let workers: TokenWorkers;
let repository: MongooseRefreshTokenRepository;
let service: RotationService;
const prefix = `{${uniqueName('rr_otel')}}`;

beforeAll(async () => {
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(provider);
  // As NodeSDK does: BullMQ carries the context in the job through the global propagator.
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  await tracingReady();
  const telemetry = new BullMQOtel({ tracerName: 'refresh-rotation-test' });
  db = await openTestDatabase();
  repository = new MongooseRefreshTokenRepository(db.connection);
  await repository.ensureIndexes();
  producerRedis = new Redis(redisUrl(), { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  workerRedis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  jobs = new BullMQTokenJobs({ connection: producerRedis, prefix, telemetry });
  workers = await startTokenWorkers({
    repository,
    connection: workerRedis,
    prefix,
    cleanup: DEFAULT_CLEANUP,
    scheduleCleanup: false,
    logger: pino({ level: 'silent' }),
    telemetry,
  });
  service = new RotationService({
    repository,
    versions: new MongooseVersionStore(db.connection, { collectionName: uniqueName('versions') }),
    jobs,
    accessToken: { secret: ACCESS_SECRET },
    refreshToken: { secrets: [REFRESH_SECRET] },
  });
});

afterAll(async () => {
  await workers?.close(5_000);
  await jobs?.close();
  const keys = await producerRedis.keys(`${prefix}:*`).catch(() => []);
  if (keys.length > 0) await producerRedis.del(...keys);
  producerRedis?.disconnect();
  workerRedis?.disconnect();
  await db?.close();
  await provider.shutdown();
  contextManager.disable();
  trace.disable();
  propagation.disable();
  context.disable();
});

it('a password change is one trace: request -> revoke_all -> the job added -> the job processed', async () => {
  const userId = uniqueName('user');
  const login = await service.issue({ userId });
  exporter.reset();
  const request = trace.getTracer('test');
  let requestContext: SpanContext | undefined;
  await request.startActiveSpan('POST /auth/password', async (span) => {
    requestContext = span.spanContext();
    await service.revokeAllForUser(userId, 'password_changed');
    span.end();
  });
  await waitFor(
    async () => (await repository.findBySessionId(login.sessionId))?.revokedAt != null,
    { what: 'the worker to revoke the session' },
  );
  const spans = await waitFor(
    () => {
      const finished = exporter.getFinishedSpans();
      return finished.some((span) => span.name.startsWith('process')) ? finished : undefined;
    },
    { what: "the worker's span" },
  );
  const traceId = requestContext!.traceId;
  const byId = new Map(spans.map((span) => [span.spanContext().spanId, span]));
  const parentOf = (span: ReadableSpan) => byId.get(span.parentSpanContext?.spanId ?? '');
  const revokeAll = spans.find((span) => span.name === 'refresh-rotation.revoke_all')!;
  const added = spans.find((span) => span.name.startsWith('add'))!;
  const processed = spans.find((span) => span.name.startsWith('process'))!;
  process.stdout.write(
    `password-change trace: ${spans
      .filter((span) => span.spanContext().traceId === traceId)
      .map((span) => `${parentOf(span)?.name ?? '(root)'} > ${span.name}`)
      .join(' | ')}\n`,
  );
  expect(revokeAll.parentSpanContext?.spanId).toBe(requestContext!.spanId);
  expect(parentOf(added)).toBe(revokeAll);
  expect(processed.spanContext().traceId).toBe(traceId);
  expect(added.spanContext().traceId).toBe(traceId);

  const text = JSON.stringify(
    spans.map((span) => [span.name, span.attributes, span.events, span.status]),
  );
  for (const secret of [login.refreshToken, login.accessToken]) expect(text).not.toContain(secret);
});
