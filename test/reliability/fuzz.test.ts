/**
 * Hostile input against the running example app over a real socket: generated requests to
 * /auth/token, /auth/logout, DELETE /auth/sessions/:id and the `authenticate` guard (GET /me,
 * GET /auth/sessions). Two deployments: HS256 access tokens, and RS256 (for algorithm confusion
 * with the public key). Oracle: no 5xx, no hang, no crash, no error log, no success with anything
 * but a valid token, and the victims' sessions untouched; positive controls prove the oracle can
 * see a success.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { OutgoingHttpHeaders } from 'node:http';
import fc from 'fast-check';
import { mongoUri, redisUrl } from '../support/services';
import { forgedJwt, garbage, mutated, type Material } from './support/hostile';
import { logIn, rawExchange, report, scale, signUp } from './support/load';
import { ACCESS_SECRET, startApp, type TestApp } from '../support/app-harness';
import { type HttpClient, type HttpRequestSpec } from '../support/http-client';

jest.setTimeout(scale(180_000, 1_800_000));

const PER_RUN = 4;

type Endpoint = 'token' | 'logout' | 'delete' | 'me' | 'sessions' | 'raw' | 'control';

interface Case {
  endpoint: Endpoint;
  spec?: HttpRequestSpec;
  raw?: Buffer;
}

interface Figures {
  requests: number;
  byEndpoint: Record<string, number>;
  byStatus: Record<string, number>;
  serverErrors: number;
  unexpectedSuccesses: number;
  noAnswer: number;
  controls: number;
  controlSuccesses: number;
}

function sessionIdOf(refreshToken: string): string {
  return Buffer.from(refreshToken.slice(3), 'base64url').subarray(2, 18).toString('hex');
}

/**
 * A string that is not one of `valid`: a mutation may land back on the original, or differ from it
 * only by surrounding whitespace, which HTTP header parsing (OWS) rightly ignores.
 */
function notValid(valid: ReadonlySet<string>) {
  return (token: string) => (valid.has(token) || valid.has(token.trim()) ? `${token}x` : token);
}

function nested(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array'
    ? '['.repeat(depth) + ']'.repeat(depth)
    : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

function caseArbitrary(material: Material, controlAccessToken: string): fc.Arbitrary<Case> {
  const valid = new Set([
    ...material.victimAccessTokens,
    ...material.victimRefreshTokens,
    controlAccessToken,
  ]);
  const token = fc
    .oneof(
      { weight: 2, arbitrary: garbage() },
      {
        weight: 4,
        arbitrary: mutated([...material.victimRefreshTokens, ...material.victimAccessTokens]),
      },
      { weight: 3, arbitrary: forgedJwt(material) },
    )
    .map(notValid(valid));
  const value = fc.oneof(
    { weight: 6, arbitrary: token as fc.Arbitrary<unknown> },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    { weight: 1, arbitrary: fc.tuple(token, token) as fc.Arbitrary<unknown> },
    {
      weight: 1,
      arbitrary: fc.constantFrom<unknown>({ $ne: null }, { $gt: '' }, null, true, 0, [], {}),
    },
  );
  const json = (body: string): HttpRequestSpec['headers'] => ({
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
  });
  const bodyFor = (field: string) =>
    fc.oneof(
      value.map((v) => ({
        headers: json(JSON.stringify({ [field]: v, grant_type: 'refresh_token' })),
        body: JSON.stringify({ [field]: v, grant_type: 'refresh_token' }),
      })),
      fc.tuple(token, token).map(([a, b]) => {
        const body = `{"${field}":${JSON.stringify(a)},"${field}":${JSON.stringify(b)}}`;
        return { headers: json(body), body };
      }),
      fc
        .tuple(
          token,
          fc.constantFrom(
            'refresh_token',
            'password',
            '',
            'refresh_token&grant_type=password',
            'REFRESH_TOKEN',
          ),
        )
        .map(([t, grant]) => ({
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: `grant_type=${grant}&${field}=${encodeURIComponent(t)}`,
        })),
      fc.tuple(token, token).map(([a, b]) => ({
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `${field}=${encodeURIComponent(a)}&${field}=${encodeURIComponent(b)}&${field}[x]=1`,
      })),
      token.map((t) => ({
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `${field}=${t}`,
      })),
      fc
        .tuple(
          fc.integer({ min: 10, max: 3_000 }),
          fc.constantFrom<'array' | 'object'>('array', 'object'),
        )
        .map(([depth, kind]) => {
          const body =
            kind === 'array' ? nested(depth, kind) : `{"${field}":${nested(depth, kind)}}`;
          return { headers: json(body), body };
        }),
      fc.integer({ min: 5_000, max: scale(300_000, 3_000_000) }).map((size) => {
        const body = JSON.stringify({ [field]: 'A'.repeat(size) });
        return { headers: json(body), body };
      }),
      fc
        .tuple(
          token,
          fc.constantFrom(
            'text/plain',
            'application/xml',
            'multipart/form-data; boundary=x',
            'application/json; charset=utf-16',
            'application/json; charset=koi8-r',
            'application/x-www-form-urlencoded; charset=iso-2022-jp',
            'application/*',
            '*/*',
            ';;;',
            'application/json, text/plain',
          ),
        )
        .map(([t, type]) => ({
          headers: { 'content-type': type },
          body: JSON.stringify({ [field]: t }),
        })),
      token.map((t) => ({
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body: JSON.stringify({ [field]: t }),
      })),
      token.map((t) => ({
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ [field]: t }).slice(0, -2),
      })),
      fc
        .string({ unit: 'binary', maxLength: 300 })
        .map((body) => ({ headers: { 'content-type': 'application/json' }, body })),
    );
  // The server's view of an Authorization header (RFC 6750 §2.1): one that still carries a valid
  // token exactly (a mutation that prefixed "Bearer ", say) is made invalid, so the oracle stays exact.
  const carriesValid = (header: string) => {
    const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header.trim());
    return match !== null && valid.has(match[1] as string);
  };
  const authorization = fc
    .oneof(
      token.map((t) => `Bearer ${t}`),
      token.map((t) => `bearer  ${t}  `),
      token.map((t) => t),
      token.map((t) => `Basic ${Buffer.from(`${t}:${t}`).toString('base64')}`),
      fc.tuple(token, token).map(([a, b]) => `Bearer ${a} ${b}`),
      fc.constantFrom(
        'Bearer',
        'Bearer ',
        'Bearer null',
        'Bearer undefined',
        'Bearer ....',
        'Bearer a.b.c',
        'Negotiate x',
        'Bearer =',
        '',
      ),
    )
    .map((header) => (carriesValid(header) ? `${header}x` : header));
  const headersWith = (auth: string): HttpRequestSpec['headers'] => ({ authorization: auth });
  const duplicateAuth = fc
    .tuple(authorization, authorization)
    .map(([a, b]) => ({ authorization: [a, b] }) as unknown as OutgoingHttpHeaders);

  const tokenCase: fc.Arbitrary<Case> = fc
    .tuple(
      bodyFor('refresh_token'),
      fc.constantFrom(
        '/auth/token',
        '/auth/token?refresh_token=x&refresh_token=y',
        '/auth/token/',
        '/AUTH/TOKEN',
      ),
    )
    .map(([request, path]) => ({ endpoint: 'token', spec: { method: 'POST', path, ...request } }));
  const logoutCase: fc.Arbitrary<Case> = fc
    .tuple(bodyFor('refresh_token'), fc.option(authorization, { nil: undefined }))
    .map(([request, auth]) => ({
      endpoint: 'logout',
      spec: {
        method: 'POST',
        path: '/auth/logout',
        ...request,
        headers: { ...request.headers, ...(auth === undefined ? {} : { authorization: auth }) },
      },
    }));
  const sessionId = fc.oneof(
    fc.constantFrom(...material.victimSessionIds),
    fc.constantFrom(...material.victimSessionIds).map((id) => id.toUpperCase()),
    garbage().map((g) => encodeURIComponent(g.slice(0, 200)) || 'x'),
    fc.constantFrom('..%2f..%2fme', '%00', '%2e%2e', 'sessions', '*', '%7B%22%24ne%22%3Anull%7D'),
  );
  const deleteCase: fc.Arbitrary<Case> = fc
    .tuple(sessionId, fc.oneof(fc.constant(`Bearer ${controlAccessToken}`), authorization))
    .map(([id, auth]) => ({
      endpoint: 'delete',
      spec: { method: 'DELETE', path: `/auth/sessions/${id}`, headers: headersWith(auth) },
    }));
  const guardCase = (endpoint: 'me' | 'sessions', path: string): fc.Arbitrary<Case> =>
    fc
      .oneof(authorization.map(headersWith), duplicateAuth)
      .map((headers): Case => ({ endpoint, spec: { method: 'GET', path, headers } }));
  const rawCase: fc.Arbitrary<Case> = fc
    .tuple(
      token,
      fc.constantFrom(
        'GET /me',
        'GET /auth/sessions',
        'POST /auth/token',
        'DELETE /auth/sessions/' + material.victimSessionIds[0],
      ),
      fc.constantFrom(
        (t: string) => `Authorization: Bearer ${t}\r\nX-Injected: 1\r\n`,
        (t: string) => `Authorization: Bearer ${t}\rX-User: ${material.victimUserId}\r\n`,
        (t: string) => `Authorization: Bearer ${t}\nX-User: ${material.victimUserId}\r\n`,
        (t: string) => `Authorization: Bearer ${t}\u0000admin\r\n`,
        (t: string) => `Authorization: Bearer ${t}\r\n ${t}\r\n`,
        (t: string) => `Authorization: Bearer ${t}\r\nAuthorization: Bearer ${t}\r\n`,
        (t: string) => `Authorization: Bearer ${t}é日本\r\n`,
        (t: string) => `Auth\u0000orization: Bearer ${t}\r\n`,
        (t: string) => `Authorization : Bearer ${t}\r\n`,
        (t: string) =>
          `Authorization: Bearer ${t}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n`,
        (t: string) =>
          `Authorization: Bearer ${t}\r\nContent-Length: 0\r\n\r\nGET /me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t}\r\n`,
        (t: string) => `Authorization: Bearer ${t}\r\nX-Big: ${'b'.repeat(20_000)}\r\n`,
      ),
    )
    .map(([t, line, headers]) => ({
      endpoint: 'raw',
      raw: Buffer.from(
        `${line} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers(t)}Connection: close\r\n\r\n`,
        'utf8',
      ),
    }));
  const controlCase: fc.Arbitrary<Case> = fc.constantFrom('/me', '/auth/sessions').map((path) => ({
    endpoint: 'control',
    spec: { method: 'GET', path, headers: { authorization: `Bearer ${controlAccessToken}` } },
  }));

  return fc.oneof(
    { weight: 6, arbitrary: tokenCase },
    { weight: 3, arbitrary: logoutCase },
    { weight: 3, arbitrary: deleteCase },
    { weight: 3, arbitrary: guardCase('me', '/me') },
    { weight: 2, arbitrary: guardCase('sessions', '/auth/sessions') },
    { weight: 1, arbitrary: rawCase },
    { weight: 1, arbitrary: controlCase },
  );
}

/** Whether an answer is a successful authentication (or session change) for this endpoint. */
function succeeded(endpoint: Endpoint, status: number): boolean {
  if (endpoint === 'logout') return false; // 204 for anything: idempotent; the victims' state is checked afterwards
  if (endpoint === 'delete') return status === 204;
  return status >= 200 && status < 300;
}

async function exchange(
  http: HttpClient,
  base: string,
  testCase: Case,
): Promise<{ statuses: number[]; text: string } | string> {
  let raw = testCase.raw;
  if (!raw) {
    try {
      const answer = await http.send({ ...testCase.spec!, timeoutMs: 10_000 });
      return { statuses: [answer.status], text: answer.text };
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code !== 'ERR_INVALID_CHAR' && code !== 'ERR_INVALID_HTTP_TOKEN')
        return `no answer (${String(error)})`;
      // The client refused to send it (an invalid header character): send the same bytes raw.
      raw = rawOf(testCase.spec!);
    }
  }
  const answer = await rawExchange(base, raw);
  if (answer.timedOut) return 'no answer within 5 s';
  return { statuses: answer.statuses, text: answer.text };
}

async function play(
  http: HttpClient,
  base: string,
  testCase: Case,
  figures: Figures,
): Promise<string | null> {
  figures.requests += 1;
  figures.byEndpoint[testCase.endpoint] = (figures.byEndpoint[testCase.endpoint] ?? 0) + 1;
  const answer = await exchange(http, base, testCase);
  if (typeof answer === 'string') {
    figures.noAnswer += 1;
    return `${answer} to ${describeCase(testCase)}`;
  }
  if (testCase.endpoint === 'control') {
    figures.controls += 1;
    const ok = answer.statuses[0] === 200;
    if (ok) figures.controlSuccesses += 1;
    return ok ? null : `control answered ${answer.statuses.join(',')}: ${answer.text}`;
  }
  for (const status of answer.statuses) {
    figures.byStatus[status] = (figures.byStatus[status] ?? 0) + 1;
    if (status >= 500) {
      figures.serverErrors += 1;
      return `${status} for ${describeCase(testCase)}`;
    }
    if (succeeded(testCase.endpoint, status)) {
      figures.unexpectedSuccesses += 1;
      return `success ${status} for ${describeCase(testCase)}`;
    }
  }
  return null;
}

function rawOf(spec: HttpRequestSpec): Buffer {
  const lines = [
    `${spec.method ?? 'GET'} ${spec.path} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Connection: close',
  ];
  for (const [name, value] of Object.entries(spec.headers ?? {})) {
    if (name === 'content-length') continue;
    for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${String(v)}`);
  }
  const body = Buffer.from(spec.body ?? '');
  lines.push(`content-length: ${body.length}`);
  return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'utf8'), body]);
}

function describeCase(testCase: Case): string {
  const text = testCase.raw
    ? testCase.raw.toString('latin1')
    : `${testCase.spec?.method} ${testCase.spec?.path} ${JSON.stringify(testCase.spec?.headers)} ${String(testCase.spec?.body ?? '')}`;
  return `${testCase.endpoint}: ${text.slice(0, 400)}`;
}

interface Deployment {
  stack: TestApp;
  material: Material;
  controlAccessToken: string;
}

async function deploy(algorithm: 'HS256' | 'RS256'): Promise<Deployment> {
  let privateKey: KeyObject | undefined;
  let publicKeyPem: string | undefined;
  let env: Record<string, string> = {};
  if (algorithm === 'RS256') {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    privateKey = pair.privateKey;
    publicKeyPem = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    env = {
      ACCESS_TOKEN_ALGORITHM: 'RS256',
      ACCESS_TOKEN_PRIVATE_KEY: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      ACCESS_TOKEN_PUBLIC_KEY: publicKeyPem,
    };
  }
  const stack = await startApp({
    mongoUrl: mongoUri(),
    redisUrl: redisUrl(),
    env: { COOKIE_TRANSPORT: 'false', ...env },
    logLevel: 'info',
  });
  const victim = await signUp(stack.http);
  const more = await Promise.all([1, 2].map(() => logIn(stack.http, victim.email)));
  const sessions = [victim, ...more];
  const control = await signUp(stack.http);
  return {
    stack,
    controlAccessToken: control.accessToken,
    material: {
      algorithm,
      ...(algorithm === 'HS256' ? { secret: ACCESS_SECRET } : { privateKey, publicKeyPem }),
      victimAccessTokens: sessions.map((s) => s.accessToken),
      victimRefreshTokens: sessions.map((s) => s.refreshToken),
      victimSessionIds: sessions.map((s) => sessionIdOf(s.refreshToken)),
      victimUserId: victim.id,
    },
  };
}

describe('hostile input against the running app', () => {
  const deployments: Deployment[] = [];
  const crashes: unknown[] = [];
  const onCrash = (error: unknown) => crashes.push(error);

  beforeAll(() => {
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);
  });

  afterAll(async () => {
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
    await Promise.all(deployments.map((d) => d.stack.close()));
  });

  it.each([
    ['HS256', scale(6_000, 60_000)],
    ['RS256', scale(4_000, 40_000)],
  ] as const)(
    'with %s access tokens, %i generated hostile requests give no 5xx, no hang, no crash and no success without a valid token',
    async (algorithm, requests) => {
      const deployment = await deploy(algorithm);
      deployments.push(deployment);
      const { stack, material, controlAccessToken } = deployment;
      const figures: Figures = {
        requests: 0,
        byEndpoint: {},
        byStatus: {},
        serverErrors: 0,
        unexpectedSuccesses: 0,
        noAnswer: 0,
        controls: 0,
        controlSuccesses: 0,
      };
      const started = Date.now();
      await fc.assert(
        fc.asyncProperty(
          fc.array(caseArbitrary(material, controlAccessToken), {
            minLength: PER_RUN,
            maxLength: PER_RUN,
          }),
          async (cases) => {
            const problems = await Promise.all(
              cases.map((c) => play(stack.http, stack.base, c, figures)),
            );
            const problem = problems.find((p) => p !== null);
            if (problem) throw new Error(problem);
          },
        ),
        { numRuns: Math.ceil((requests * 1.15) / PER_RUN), endOnFailure: true },
      );

      const health = await stack.http.send({ path: '/healthz' });
      const errorLines = stack.logs.lines.filter(
        (line) => (JSON.parse(line) as { level: number }).level >= 50,
      );
      const victims = await Promise.all(
        material.victimSessionIds.map((id) => stack.repository.findBySessionId(id)),
      );
      report(`fuzz.${algorithm}`, {
        ...figures,
        seconds: Math.round((Date.now() - started) / 1000),
        errorLogLines: errorLines.length,
        crashes: crashes.length,
      });

      expect(figures.requests - figures.controls).toBeGreaterThanOrEqual(requests);
      expect(figures.serverErrors).toBe(0);
      expect(figures.unexpectedSuccesses).toBe(0);
      expect(figures.controls).toBeGreaterThan(0);
      expect(figures.controlSuccesses).toBe(figures.controls);
      expect(crashes).toEqual([]);
      expect(errorLines).toEqual([]);
      expect(health.status).toBe(200);
      // Nothing the fuzzer sent rotated, revoked or otherwise touched a victim's session.
      for (const record of victims)
        expect(record).toMatchObject({ generation: 0, revokedAt: null });
      for (const refreshToken of material.victimRefreshTokens)
        expect((await stack.http.refresh(refreshToken)).status).toBe(200);
    },
  );
});
