/**
 * The service's spans (DESIGN.md §12), under a real OpenTelemetry SDK (`@opentelemetry/sdk-trace`
 * with an in-memory exporter and the async-hooks context manager, as a user's SDK would run): one
 * span per use case, named `refresh-rotation.<operation>`, a child of the caller's span, carrying
 * the outcome vocabulary and error codes, and nothing that names a token, a user or a session.
 */
import { context, trace, SpanStatusCode } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace';
import {
  InlineTokenJobs,
  MemoryRefreshTokenRepository,
  MemoryVersionStore,
} from '../../src/adapters/memory';
import { tracingReady } from '../../src/adapters/opentelemetry/otel-tracing';
import { RotationService } from '../../src/rotation-service';
import { FakeClock } from '../support/fake-clock';
import { ACCESS_SECRET, REFRESH_SECRET } from '../support/secrets';

const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
const contextManager = new AsyncLocalStorageContextManager().enable();

beforeAll(async () => {
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(provider);
  await tracingReady();
});

afterAll(async () => {
  await provider.shutdown();
  contextManager.disable();
  trace.disable();
  context.disable();
});

beforeEach(() => exporter.reset());

function service(options: { tracing?: boolean } = {}) {
  const clock = new FakeClock();
  const repository = new MemoryRefreshTokenRepository({ clock });
  const rotation = new RotationService({
    repository,
    versions: new MemoryVersionStore(),
    jobs: new InlineTokenJobs(repository),
    clock,
    accessToken: { secret: ACCESS_SECRET },
    refreshToken: { secrets: [REFRESH_SECRET], reuseGrace: '10s' },
    ...options,
  });
  return { rotation, clock };
}

const spans = (): ReadableSpan[] => exporter.getFinishedSpans();
const named = (name: string) => spans().filter((span) => span.name === name);

/** Every string a span holds: its name, attributes, events and status message. */
function textOf(span: ReadableSpan): string {
  return JSON.stringify([
    span.name,
    span.attributes,
    span.events.map((event) => [event.name, event.attributes]),
    span.status.message ?? '',
  ]);
}

describe('spans of the use cases', () => {
  it('a journey: one span per use case, with the outcome of each refresh, and no token, user or session id anywhere', async () => {
    const { rotation, clock } = service();
    const login = await rotation.issue({ userId: 'alice@example.com' });
    clock.advance('1m');
    const first = await rotation.refresh(login.refreshToken, undefined, { transport: 'cookie' });
    const straggler = await rotation.refresh(login.refreshToken);
    clock.advance('1m');
    await expect(rotation.refresh(login.refreshToken)).rejects.toMatchObject({
      reason: 'reused',
    });
    const second = await rotation.issue({ userId: 'alice@example.com' });
    await rotation.isAccessTokenCurrent(rotation.verifyAccessToken(second.accessToken), {
      sessions: true,
    });
    await rotation.listSessions('alice@example.com');
    await rotation.revokeSession(second.sessionId);
    await rotation.revokeByRefreshToken(second.refreshToken);
    await rotation.revokeAllForUser('alice@example.com', 'password_changed');
    await rotation.rotateGlobal({ reason: 'drill' });

    expect(spans().map((span) => span.name)).toEqual([
      'refresh-rotation.issue',
      'refresh-rotation.refresh',
      'refresh-rotation.refresh',
      'refresh-rotation.refresh',
      'refresh-rotation.issue',
      'refresh-rotation.check_revocation',
      'refresh-rotation.list_sessions',
      'refresh-rotation.revoke_session',
      'refresh-rotation.revoke_by_token',
      'refresh-rotation.revoke_all',
      'refresh-rotation.rotate_global',
    ]);
    expect(named('refresh-rotation.refresh').map((span) => span.attributes)).toEqual([
      {
        'refresh_rotation.token_format': 3,
        'refresh_rotation.transport': 'cookie',
        'refresh_rotation.outcome': 'rotated',
        'refresh_rotation.binding': 'none',
      },
      {
        'refresh_rotation.token_format': 3,
        'refresh_rotation.outcome': 'grace',
        'refresh_rotation.binding': 'none',
      },
      {
        'refresh_rotation.token_format': 3,
        'refresh_rotation.outcome': 'reused',
        'error.type': 'invalid_grant',
      },
    ]);
    const refused = named('refresh-rotation.refresh')[2]!;
    expect(refused.status).toEqual({ code: SpanStatusCode.ERROR, message: 'invalid_grant' });
    expect(refused.events).toEqual([]);
    expect(named('refresh-rotation.check_revocation')[0]!.attributes).toEqual({
      'refresh_rotation.current': true,
    });

    const secrets = [
      login.refreshToken,
      login.accessToken,
      first.refreshToken,
      straggler.refreshToken,
      second.refreshToken,
      second.accessToken,
      login.sessionId,
      second.sessionId,
      'alice',
    ];
    for (const span of spans())
      for (const secret of secrets) expect(textOf(span)).not.toContain(secret);
  });

  it('the binding attribute names how the session is bound, whichever endpoint refreshed it', async () => {
    const { rotation } = service();
    const device = { jkt: 'D'.repeat(43), jwk: { kty: 'EC', crv: 'P-256', x: 'x', y: 'y' } };
    const browser = await rotation.issue({ userId: 'erin' });
    await rotation.bindDevice(browser.refreshToken, async () => device, 600_000);
    await rotation.refresh(browser.refreshToken, undefined, { transport: 'cookie' });
    await rotation.refreshByDeviceProof(browser.sessionId, async () => undefined, 600_000);
    const app = await rotation.issue({ userId: 'erin', dpop: { jkt: 'P'.repeat(43) } });
    await rotation.refresh(app.refreshToken, { jkt: 'P'.repeat(43) });

    expect(spans().map((span) => [span.name, span.attributes['refresh_rotation.binding']])).toEqual(
      [
        ['refresh-rotation.issue', 'none'],
        ['refresh-rotation.bind_device', undefined],
        ['refresh-rotation.refresh', 'dbsc'],
        ['refresh-rotation.refresh_by_device_proof', undefined],
        ['refresh-rotation.issue', 'dpop'],
        ['refresh-rotation.refresh', 'dpop'],
      ],
    );
  });

  it("each span is a child of the caller's active span", async () => {
    const { rotation } = service();
    const caller = trace.getTracer('test');
    await caller.startActiveSpan('POST /auth/login', async (parent) => {
      await rotation.issue({ userId: 'bob' });
      parent.end();
    });
    const [issue, parent] = spans();
    expect(parent!.name).toBe('POST /auth/login');
    expect(issue!.parentSpanContext?.spanId).toBe(parent!.spanContext().spanId);
    expect(issue!.spanContext().traceId).toBe(parent!.spanContext().traceId);
  });

  it('a store failure is recorded by its code, not its message', async () => {
    const { rotation } = service();
    const login = await rotation.issue({ userId: 'carol' });
    exporter.reset();
    class DownRepository extends MemoryRefreshTokenRepository {
      override async save(): Promise<never> {
        throw new Error(`connection to db-primary.internal refused for ${login.sessionId}`);
      }
    }
    const failing = new RotationService({
      repository: new DownRepository(),
      versions: new MemoryVersionStore(),
      accessToken: { secret: ACCESS_SECRET },
      refreshToken: { secrets: [REFRESH_SECRET] },
    });
    await expect(failing.issue({ userId: 'carol' })).rejects.toMatchObject({
      code: 'store_unavailable',
    });
    const [span] = spans();
    expect(span!.status).toEqual({ code: SpanStatusCode.ERROR, message: 'store_unavailable' });
    expect(textOf(span!)).not.toContain('db-primary');
    expect(textOf(span!)).not.toContain(login.sessionId);
  });

  it('tracing: false makes no span; a non-boolean is an OptionsError', async () => {
    const { rotation } = service({ tracing: false });
    await rotation.issue({ userId: 'dave' });
    expect(spans()).toEqual([]);
    expect(() => service({ tracing: 'yes' as never })).toThrow(/tracing must be true or false/);
  });
});
