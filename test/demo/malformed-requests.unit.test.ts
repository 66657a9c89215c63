/**
 * A client's malformed request is never a 5xx (issue 14, item 3): generated paths, path
 * parameters, query strings and headers sent to every route of the example app over a real socket
 * never get a status >= 500 nor an error log line. The router's 400 for a path parameter that is
 * not valid percent-encoding is test/express/path-encoding.unit.test.ts.
 */
import { request as httpRequest } from 'node:http';
import fc from 'fast-check';
import { PASSWORD, startApp, type TestApp } from '../support/app-harness';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** Every route of the example app, with `:id` where it takes a path parameter. */
const ROUTES: ReadonlyArray<readonly [string, string]> = [
  ['GET', '/healthz'],
  ['GET', '/readyz'],
  ['POST', '/auth/register'],
  ['POST', '/auth/login'],
  ['POST', '/auth/password'],
  ['POST', '/auth/token'],
  ['POST', '/auth/logout'],
  ['POST', '/auth/logout-all'],
  ['GET', '/auth/sessions'],
  ['DELETE', '/auth/sessions/:id'],
  ['GET', '/me'],
  ['GET', '/'],
  ['GET', '/app.js'],
  ['GET', '/:id'],
  ['POST', '/auth/:id'],
];

interface Answer {
  status: number;
  body: string;
}

interface Sent {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

function send(base: string, sent: Sent): Promise<Answer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method: sent.method,
        path: sent.path,
        headers: {
          ...sent.headers,
          ...(sent.body === undefined ? {} : { 'content-length': Buffer.byteLength(sent.body) }),
        },
        timeout: 5_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer in 5 s to ${JSON.stringify(sent)}`)));
    req.on('error', reject);
    req.end(sent.body);
  });
}

/** Percent signs in every broken arrangement, and ordinary path characters (0x21-0xff, no / ? #). */
function pathSegment(): fc.Arbitrary<string> {
  const pieces = fc.oneof(
    fc.constantFrom(
      '%',
      '%%',
      '%E0%A4%A',
      '%E0%A4',
      '%A',
      '%ZZ',
      '%G1',
      '%00',
      '%2F',
      '%25',
      '%C0%AF',
      '%FF',
      '%ED%A0%80',
      '%u0041',
      '..',
      '.',
      '%2e%2e',
      ':',
      'sessions',
      'a'.repeat(300),
    ),
    fc.array(fc.integer({ min: 0x21, max: 0xff }), { minLength: 1, maxLength: 12 }).map((codes) =>
      codes
        .filter((code) => code !== 0x2f && code !== 0x3f && code !== 0x23)
        .map((code) => String.fromCharCode(code))
        .join(''),
    ),
  );
  return fc.array(pieces, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('') || '%');
}

/** A header value Node's client will send: tab, printable ASCII and latin-1 bytes, no CR/LF. */
function headerValue(): fc.Arbitrary<string> {
  const char = fc.oneof(
    fc.integer({ min: 0x20, max: 0x7e }),
    fc.integer({ min: 0x80, max: 0xff }),
    fc.constant(0x09),
  );
  return fc.array(char, { maxLength: 80 }).map((codes) => String.fromCharCode(...codes).trim());
}

const HEADER_NAMES = [
  'authorization',
  'cookie',
  'content-type',
  'content-encoding',
  'accept',
  'accept-encoding',
  'accept-language',
  'origin',
  'referer',
  'sec-fetch-site',
  'x-token-transport',
  'x-refresh-csrf',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'user-agent',
  'host',
  'range',
  'if-none-match',
  'if-modified-since',
  'x-request-id',
] as const;

describe('malformed requests to the example app', () => {
  let harness: TestApp;
  let base: string;
  let lines: string[];
  let accessToken: string;
  let refreshToken: string;

  beforeAll(async () => {
    harness = await startApp({ logLevel: 'warn' });
    ({ base } = harness);
    ({ lines } = harness.logs);
    const json = { 'content-type': 'application/json' };
    const credentials = JSON.stringify({ email: 'fuzz@example.com', password: PASSWORD });
    await send(base, { method: 'POST', path: '/auth/register', headers: json, body: credentials });
    const login = await send(base, {
      method: 'POST',
      path: '/auth/login',
      headers: json,
      body: credentials,
    });
    ({ access_token: accessToken, refresh_token: refreshToken } = JSON.parse(login.body));
  });

  afterAll(async () => {
    await harness?.close();
  });

  /** Lines at error level or above written since line `from`. */
  function errorLinesSince(from: number): string[] {
    return lines.slice(from).filter((line) => (JSON.parse(line) as { level: number }).level >= 50);
  }

  it('never answers 5xx nor logs an error for generated paths, parameters, queries and headers on every route', async () => {
    const token = fc.oneof(
      headerValue(),
      fc.constant(accessToken),
      fc.constant(refreshToken),
      fc.constant(`${accessToken}x`),
    );
    const headerEntries = fc.array(
      fc.oneof(
        fc.tuple(fc.constantFrom(...HEADER_NAMES), headerValue()),
        fc.tuple(
          fc.constant('authorization'),
          fc.oneof(
            token.map((t) => `Bearer ${t}`),
            headerValue().map((v) => `Basic ${v}`),
            fc.constant('Bearer'),
            fc.constant(`Bearer ${accessToken}, Bearer ${accessToken}`),
          ),
        ),
        fc.tuple(
          fc.constant('cookie'),
          fc
            .tuple(
              fc.constantFrom('__Secure-refresh_token', 'refresh_token', 'a'),
              token,
              fc.boolean(),
            )
            .map(([name, value, twice]) =>
              twice ? `${name}=${value}; ${name}=${value}` : `${name}=${value}`,
            ),
        ),
        fc.tuple(
          fc.constant('content-type'),
          fc.constantFrom(
            'application/json',
            'application/x-www-form-urlencoded',
            'application/json; charset=utf-16',
            'application/json; charset=nonsense',
            'text/plain',
            'multipart/form-data; boundary=x',
          ),
        ),
        fc.tuple(fc.constant('content-encoding'), fc.constantFrom('gzip', 'deflate', 'br', 'x')),
        fc.tuple(fc.constant('x-refresh-csrf'), fc.constant('1')),
      ),
      { maxLength: 6 },
    );
    const request = fc.record({
      route: fc.constantFrom(...ROUTES),
      method: fc.oneof(fc.constant(null), fc.constantFrom(...METHODS)),
      param: pathSegment(),
      query: fc.option(
        fc
          .array(fc.tuple(pathSegment(), pathSegment()), { maxLength: 3 })
          .map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join('&')),
      ),
      headers: headerEntries,
      body: fc.option(
        fc.oneof(
          fc.constant('{}'),
          fc.constant('{"refresh_token":"rt_x","email":"a@b.cd","password":"x"}'),
          fc.constant('grant_type=refresh_token&refresh_token=%'),
          headerValue(),
        ),
      ),
    });

    let sent = 0;
    const statuses: Record<number, number> = {};
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const [routeMethod, template] = r.route;
        const method = r.method ?? routeMethod;
        const path = template.replace(':id', r.param) + (r.query === null ? '' : `?${r.query}`);
        const headers: Record<string, string> = {};
        for (const [name, value] of r.headers) headers[name] = value;
        const body = method === 'GET' || method === 'HEAD' ? undefined : (r.body ?? undefined);
        const before = lines.length;
        const answer = await send(base, {
          method,
          path,
          headers,
          ...(body === undefined ? {} : { body }),
        });
        sent += 1;
        statuses[answer.status] = (statuses[answer.status] ?? 0) + 1;
        expect({ path, status: answer.status < 500 }).toEqual({ path, status: true });
        expect(errorLinesSince(before)).toEqual([]);
      }),
      { numRuns: 600 },
    );
    process.stdout.write(`SECURITY malformed-requests ${JSON.stringify({ sent, statuses })}\n`);
    expect(sent).toBe(600);
    expect(Object.keys(statuses).length).toBeGreaterThan(3);
  }, 120_000);
});
