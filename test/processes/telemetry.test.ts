/**
 * Traces as a user would enable them (issue 24, items 3 and 4): `npm run demo` on the MongoDB-wire
 * server and Redis, with its worker, started with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a
 * collector in this test (OTLP over HTTP, JSON) and the http, express, mongodb and ioredis
 * instrumentations on (startup/telemetry.ts). A journey (register, login, refresh, a straggler, a
 * reuse, a password change the worker carries out), then SIGTERM, which flushes the spans. Every
 * span name, attribute, event and status message the collector received is scanned for every
 * token, tag, password and Authorization value used, and the user and session ids: none may
 * appear. The expected spans are
 * there, and the password change is one trace from the request into the worker's job.
 */
import { createServer, type Server } from 'node:http';
import { PASSWORD } from '../support/app-harness';
import { startGroup, type ProcessGroup } from '../support/process-group';
import { freePort } from '../support/servers';
import { mongoUri, redisUrl, uniqueName } from '../support/services';
import { waitFor } from '../support/wait-for';
import { databaseUri } from '../support/worker-process';

jest.setTimeout(180_000);

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: Array<{ key: string; value: Record<string, unknown> }>;
  events?: Array<{ name: string; attributes?: unknown }>;
  status?: { message?: string };
}
interface ServiceSpan extends OtlpSpan {
  service: string;
}

let collector: Server;
let collectorPort: number;
const received: ServiceSpan[] = [];
let demo: ProcessGroup | undefined;

beforeAll(async () => {
  collector = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      if (req.url === '/v1/traces') {
        const parsed = JSON.parse(body) as {
          resourceSpans?: Array<{
            resource?: { attributes?: Array<{ key: string; value: { stringValue?: string } }> };
            scopeSpans?: Array<{ spans?: OtlpSpan[] }>;
          }>;
        };
        for (const resource of parsed.resourceSpans ?? []) {
          const service =
            resource.resource?.attributes?.find((a) => a.key === 'service.name')?.value
              .stringValue ?? '?';
          for (const scope of resource.scopeSpans ?? [])
            for (const span of scope.spans ?? []) received.push({ ...span, service });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  collectorPort = await freePort();
  await new Promise<void>((resolve) => collector.listen(collectorPort, '127.0.0.1', resolve));
});

afterAll(async () => {
  demo?.killGroup();
  await new Promise((resolve) => collector.close(resolve));
});

/** The strings of a span a tracing backend would show. */
function textOf(span: OtlpSpan): string {
  return JSON.stringify([span.name, span.attributes ?? [], span.events ?? [], span.status ?? {}]);
}

/** Every form a refresh token's secret parts could take in a span. */
function formsOf(token: string): string[] {
  if (!token.startsWith('rt_')) return [token, ...token.split('.').filter((p) => p.length > 16)];
  const body = Buffer.from(token.slice(3), 'base64url');
  return [token, token.slice(3), body.toString('hex'), body.subarray(-16).toString('hex')];
}

it('a journey under the SDK: the expected spans, one trace for a password change, and no secret in any span', async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const dbName = uniqueName('rr_otel');
  demo = startGroup('npm', ['run', '--silent', 'demo'], {
    MONGODB_URI: databaseUri(mongoUri(), dbName),
    REDIS_URL: redisUrl(),
    QUEUE_PREFIX: `{${uniqueName('rr_otel')}}`,
    PORT: String(port),
    WORKER_HEALTH_PORT: '0',
    ACCESS_TOKEN_SECRET: 'otel-access-secret-0123456789abcdef0123456789',
    REFRESH_TOKEN_SECRETS: 'otel-refresh-secret-0123456789abcdef012345678',
    REFRESH_REUSE_GRACE: '1s',
    // A cleanup run and a touch job within the test, so their spans come too.
    CLEANUP_CRON: '*/2 * * * * *',
    TOUCH_WINDOW: '1s',
    LOG_LEVEL: 'info',
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collectorPort}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '200',
    OTEL_METRICS_EXPORTER: 'none',
    OTEL_LOGS_EXPORTER: 'none',
  });
  await demo.waitFor(/example app listening/, 90_000);
  await demo.waitFor(/"msg":"worker ready"/, 90_000);

  const secrets: string[] = [PASSWORD, 'a brand new passphrase 42'];
  const post = async (path: string, body: object, bearer?: string) => {
    const response = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
      },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    const json = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
    for (const key of ['access_token', 'refresh_token'])
      if (typeof json[key] === 'string') secrets.push(...formsOf(json[key] as string));
    return { status: response.status, json };
  };
  const email = `${uniqueName('otel')}@example.com`;
  expect((await post('/auth/register', { email, password: PASSWORD })).status).toBe(202);
  const login = await post('/auth/login', { email, password: PASSWORD });
  expect(login.status).toBe(200);
  const first = String(login.json.refresh_token);
  const rotated = await post('/auth/token', { refresh_token: first });
  expect(rotated.status).toBe(200);
  const straggler = await post('/auth/token', { refresh_token: first });
  expect(straggler.json.refresh_token).toBe(rotated.json.refresh_token);
  const access = String(rotated.json.access_token);
  secrets.push(`Bearer ${access}`);
  // DESIGN.md §12: no user or session id either (the access token's sub and sid).
  const claims = JSON.parse(Buffer.from(access.split('.')[1]!, 'base64url').toString()) as {
    sub: string;
    sid: string;
  };
  secrets.push(claims.sub, claims.sid);
  const me = await fetch(`${base}/me`, { headers: { authorization: `Bearer ${access}` } });
  expect(me.status).toBe(200);
  await new Promise((resolve) => setTimeout(resolve, 1_200));
  expect((await post('/auth/token', { refresh_token: first })).status).toBe(400); // reuse

  const again = await post('/auth/login', { email, password: PASSWORD });
  const changed = await post(
    '/auth/password',
    { currentPassword: PASSWORD, newPassword: 'a brand new passphrase 42' },
    String(again.json.access_token),
  );
  expect(changed.status).toBe(204);
  await waitFor(
    async () =>
      (await post('/auth/token', { refresh_token: String(again.json.refresh_token) })).status ===
      400,
    { what: 'the password change to end the other session', timeoutMs: 30_000 },
  );
  for (const job of ['revoke-all', 'touch', 'cleanup'])
    await waitFor(() => received.some((span) => span.name.startsWith(`process ${job}`)), {
      what: `the worker's span of a ${job} job`,
      timeoutMs: 30_000,
    });

  demo.signal('SIGTERM');
  expect((await demo.exitWithin(30_000)).code).toBe(0);

  const names = new Set(received.map((span) => `${span.service}: ${span.name}`));
  process.stdout.write(
    `telemetry: ${received.length} spans; names: ${[...names].sort().join(', ')}\n`,
  );
  for (const expected of [
    'refresh-rotation-demo: refresh-rotation.issue',
    'refresh-rotation-demo: refresh-rotation.refresh',
    'refresh-rotation-demo: refresh-rotation.revoke_all',
  ])
    expect(names).toContain(expected);
  expect(
    received.some((span) => span.service === 'refresh-rotation-demo' && /^POST/.test(span.name)),
  ).toBe(true);
  expect(received.some((span) => /^mongodb\.|findAndModify|findOneAndUpdate/.test(span.name))).toBe(
    true,
  );
  expect(
    received.some(
      (span) =>
        span.attributes?.some((a) => a.key === 'db.system' || a.key === 'db.system.name') &&
        /redis/i.test(textOf(span)),
    ),
  ).toBe(true);

  // The password change: request -> revoke_all -> the job added -> the worker's processing.
  const refreshed = received.find((span) => span.name === 'refresh-rotation.refresh')!;
  expect(refreshed.attributes).toEqual(
    expect.arrayContaining([
      { key: 'refresh_rotation.transport', value: { stringValue: 'body' } },
      { key: 'refresh_rotation.outcome', value: { stringValue: 'rotated' } },
    ]),
  );
  const revokeAll = received.find((span) => span.name === 'refresh-rotation.revoke_all')!;
  const trace = received.filter((span) => span.traceId === revokeAll.traceId);
  const byId = new Map(trace.map((span) => [span.spanId, span]));
  const tree = trace
    .map(
      (span) =>
        `${span.service}: ${byId.get(span.parentSpanId ?? '')?.name ?? '(root)'} > ${span.name}`,
    )
    .sort();
  process.stdout.write(`password-change trace:\n  ${tree.join('\n  ')}\n`);
  expect(
    trace.some(
      (span) =>
        span.service === 'refresh-rotation-worker' && span.name.startsWith('process revoke-all'),
    ),
  ).toBe(true);
  expect(
    trace.some(
      (span) => span.service === 'refresh-rotation-worker' && /updateMany|update/.test(span.name),
    ),
  ).toBe(true);

  // Log lines written inside a span name it (pino's mixin), so logs and traces join up: the
  // app's and the worker's.
  const traceIds = new Set(received.map((span) => span.traceId));
  const tracedLines = demo
    .stdout()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { service?: string; trace_id?: string; span_id?: string })
    .filter((line) => line.trace_id !== undefined && traceIds.has(line.trace_id));
  for (const service of ['refresh-rotation-example', 'refresh-rotation-worker'])
    expect(tracedLines.some((line) => line.service === service)).toBe(true);

  const leaks = received.flatMap((span) =>
    secrets
      .filter((secret) => textOf(span).includes(secret))
      .map((secret) => `${span.name}: ${secret.slice(0, 12)}…`),
  );
  expect(leaks).toEqual([]);
});
