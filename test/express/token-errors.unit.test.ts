/**
 * POST /auth/token and the error table: every malformed, oversized, mistyped or forged request gets
 * a 4xx with the RFC 6749 body and no-store headers, never a 5xx; store failures give 503 with
 * Retry-After; unexpected failures give a generic 500 whose details only reach the log.
 */
import express from 'express';
import request from 'supertest';
import { MemoryRefreshTokenRepository, MemoryVersionStore } from '../../src/adapters/memory';
import { createRefreshRouter, toHttpError } from '../../src/adapters/express';
import {
  InvalidAccessTokenError,
  InvalidDpopProofError,
  RefreshRotationError,
  UseDpopNonceError,
} from '../../src/domain/errors';
import type { RotateInput } from '../../src/domain/refresh-token';
import { RotationService, type TokenResponse } from '../../src/rotation-service';
import { refreshForm, refreshJson, routerHarness, useRouter } from '../support/router-harness';
import { ACCESS_SECRET, REFRESH_SECRET } from '../support/secrets';

const INVALID_GRANT = {
  error: 'invalid_grant',
  error_description: 'The refresh token is invalid, expired or revoked.',
};

function expectNoStore(response: request.Response): void {
  expect(response.headers['cache-control']).toBe('no-store');
  expect(response.headers.pragma).toBe('no-cache');
}

function expectOAuthError(response: request.Response, status: number, error: string): void {
  expect(response.status).toBe(status);
  expect(response.body).toEqual({ error, error_description: expect.any(String) });
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  expectNoStore(response);
}

describe('POST /auth/token of the router', () => {
  const backend = useRouter(() => routerHarness());

  it('form-encoded and JSON refreshes of the same token give the same body', async () => {
    const { app } = backend;
    const tokens = await backend.tokens();
    const form = await refreshForm(app, tokens.refresh_token!);
    const json = await refreshJson(app, tokens.refresh_token!); // inside the grace window
    for (const response of [form, json]) {
      expect(response.status).toBe(200);
      expectNoStore(response);
      expect(Object.keys(response.body).sort()).toEqual([
        'access_token',
        'expires_in',
        'refresh_token',
        'token_type',
      ]);
    }
    expect(json.body.refresh_token).toBe(form.body.refresh_token);
    expect(json.body.token_type).toBe(form.body.token_type);
    expect(json.body.expires_in).toBe(form.body.expires_in);
    // JSON may also carry grant_type.
    const withGrant = await request(app)
      .post('/auth/token')
      .send({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    expect(withGrant.body.refresh_token).toBe(form.body.refresh_token);
  });

  it('an unsupported grant_type gives unsupported_grant_type, in a form or in JSON', async () => {
    const { app } = backend;
    const form = await request(app)
      .post('/auth/token')
      .type('form')
      .send({ grant_type: 'password', username: 'a', password: 'b' });
    expectOAuthError(form, 400, 'unsupported_grant_type');
    const json = await request(app)
      .post('/auth/token')
      .send({ grant_type: 'client_credentials', refresh_token: 'x' });
    expectOAuthError(json, 400, 'unsupported_grant_type');
  });

  it('a missing token gives invalid_request, whatever the body', async () => {
    const { app } = backend;
    expectOAuthError(
      await request(app).post('/auth/token').type('form').send({ grant_type: 'refresh_token' }),
      400,
      'invalid_request',
    );
    expectOAuthError(await request(app).post('/auth/token').send({}), 400, 'invalid_request');
    expectOAuthError(await request(app).post('/auth/token'), 400, 'invalid_request');
    expectOAuthError(
      await request(app).post('/auth/token').send({ refresh_token: '' }),
      400,
      'invalid_request',
    );
    // A token hidden in the prototype is not a token.
    expectOAuthError(
      await request(app)
        .post('/auth/token')
        .set('Content-Type', 'application/json')
        .send('{"__proto__":{"refresh_token":"rt_x"}}'),
      400,
      'invalid_request',
    );
  });

  it('malformed bodies, wrong content types and repeated parameters give 400 invalid_request', async () => {
    const { app } = backend;
    const cases: Array<[string, string, string]> = [
      ['application/json', '{"refresh_token":', 'truncated JSON'],
      ['application/json', 'null', 'JSON null'],
      ['application/json', '"rt_abc"', 'a JSON string'],
      ['application/json', '[{"refresh_token":"rt_abc"}]', 'a JSON array'],
      ['application/json; charset=koi8-r', '{"refresh_token":"rt_abc"}', 'an unsupported charset'],
      ['text/plain', 'refresh_token=rt_abc', 'text/plain'],
      ['application/xml', '<refresh_token>rt_abc</refresh_token>', 'XML'],
      [
        'multipart/form-data; boundary=x',
        '--x\r\nContent-Disposition: form-data; name="refresh_token"\r\n\r\nrt_abc\r\n--x--',
        'multipart',
      ],
      [
        'application/x-www-form-urlencoded',
        'grant_type=refresh_token&refresh_token=a&refresh_token=b',
        'a repeated parameter',
      ],
      [
        'application/x-www-form-urlencoded',
        'grant_type=refresh_token&grant_type=refresh_token&refresh_token=a',
        'a repeated grant_type',
      ],
      ['application/x-www-form-urlencoded', '%%%', 'broken percent-encoding'],
    ];
    for (const [type, body, what] of cases) {
      const response = await request(app).post('/auth/token').set('Content-Type', type).send(body);
      expect({ what, status: response.status, error: response.body.error }).toEqual({
        what,
        status: 400,
        error: expect.stringMatching(/^invalid_(request|grant)$/),
      });
      expectNoStore(response);
      if (['text/plain', 'XML', 'multipart'].includes(what))
        expect(response.body.error_description).toBe(
          'Send refresh_token in an application/x-www-form-urlencoded or application/json body.',
        );
    }
    const compressed = await request(app)
      .post('/auth/token')
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'compress')
      .send('{"refresh_token":"rt_abc"}');
    expectOAuthError(compressed, 400, 'invalid_request');
    const brokenGzip = await request(app)
      .post('/auth/token')
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'gzip')
      .send('definitely not gzip');
    expect(brokenGzip.status).toBe(400);
  });

  it('a huge body gives 413 invalid_request, never 500', async () => {
    const { app } = backend;
    const json = await request(app)
      .post('/auth/token')
      .send({ refresh_token: 'rt_' + 'a'.repeat(100_000) });
    expectOAuthError(json, 413, 'invalid_request');
    const form = await request(app)
      .post('/auth/token')
      .type('form')
      .send(`grant_type=refresh_token&refresh_token=${'a'.repeat(100_000)}`);
    expectOAuthError(form, 413, 'invalid_request');
    const many = await request(app)
      .post('/auth/token')
      .type('form')
      .send(Array.from({ length: 50 }, (_, i) => `p${i}=1`).join('&'));
    expectOAuthError(many, 413, 'invalid_request'); // more than 20 form parameters
  });

  it('garbage and forged tokens give invalid_grant with one fixed description; non-strings give invalid_request', async () => {
    const { app } = backend;
    const tokens = await backend.tokens();
    const real = tokens.refresh_token!;
    const flipped = real.slice(0, -2) + (real.at(-2) === 'A' ? 'B' : 'A') + real.at(-1);
    const garbage = [
      'abc',
      'rt_',
      'rt_!!!!',
      'rt_' + 'A'.repeat(76),
      flipped,
      real + 'A',
      tokens.access_token,
      'x'.repeat(3_000),
      '\u0000\u0001',
    ];
    for (const token of garbage) {
      const response = await refreshJson(app, token);
      expect({ token: token.slice(0, 20), status: response.status, body: response.body }).toEqual({
        token: token.slice(0, 20),
        status: 400,
        body: INVALID_GRANT,
      });
    }
    for (const value of [42, true, ['rt_a'], { token: 'rt_a' }, null]) {
      const response = await request(app).post('/auth/token').send({ refresh_token: value });
      expectOAuthError(response, 400, 'invalid_request');
      // Said as it is: the token is there, but not as one string.
      expect(response.body.error_description).toBe('refresh_token must be a single string.');
    }
    // The forged attempts changed nothing: the real token still rotates.
    expect((await refreshForm(app, real)).status).toBe(200);
  });

  it('reuse, revocation and an unknown session look exactly like forgery to the client', async () => {
    const { app, clock } = backend;
    const tokens = await backend.tokens();
    const other = routerHarness(); // same secrets, different store: a well-formed token of an unknown session
    try {
      const foreign = (await other.tokens()).refresh_token!;
      const rotated = await refreshForm(app, tokens.refresh_token!);
      clock.advance(11_000);
      const reused = await refreshForm(app, tokens.refresh_token!);
      const revoked = await refreshForm(app, rotated.body.refresh_token);
      const unknown = await refreshForm(app, foreign);
      const forged = await refreshForm(
        app,
        tokens.refresh_token!.replace(/.$/, (c) => (c === 'x' ? 'y' : 'x')),
      );
      const answers = [reused, revoked, unknown, forged].map((r) => ({
        status: r.status,
        body: r.body,
        headers: { cc: r.headers['cache-control'] },
      }));
      for (const answer of answers) expect(answer).toEqual(answers[0]);
      expect(answers[0]).toEqual({ status: 400, body: INVALID_GRANT, headers: { cc: 'no-store' } });
    } finally {
      await other.close();
    }
  });
});

/** A real service whose store fails the way an adapter reports an outage, or with a bug. */
class FailingRepository extends MemoryRefreshTokenRepository {
  failure: Error | null = null;

  override async findBySessionId(sessionId: string) {
    if (this.failure) throw this.failure;
    return super.findBySessionId(sessionId);
  }

  override async rotate(input: RotateInput) {
    if (this.failure) throw this.failure;
    return super.rotate(input);
  }
}

class BrokenService extends RotationService {
  override async refresh(_token: unknown): Promise<TokenResponse> {
    throw new TypeError('cannot read properties of undefined (mongodb://admin:hunter2@db)');
  }
}

describe('the router on its own, mounted in a bare app without a body parser', () => {
  const options = {
    versions: new MemoryVersionStore(),
    accessToken: { secret: ACCESS_SECRET },
    refreshToken: { secrets: [REFRESH_SECRET] },
  };

  function capture() {
    const lines: Array<{ object: object; message?: string }> = [];
    return {
      lines,
      logger: {
        error: (object: object, message?: string) => void lines.push({ object, message }),
        warn: (object: object, message?: string) => void lines.push({ object, message }),
      },
    };
  }

  it('answers 503 temporarily_unavailable with Retry-After when the store is down, then recovers', async () => {
    const repository = new FailingRepository();
    const service = new RotationService({ ...options, repository });
    const log = capture();
    const app = express().use(
      '/oauth',
      createRefreshRouter({ service, logger: log.logger, retryAfterSeconds: 7 }),
    );
    const { refreshToken } = await service.issue({ userId: 'u1' });

    repository.failure = new Error('connection refused');
    const down = await request(app)
      .post('/oauth/token')
      .type('form')
      .send({ grant_type: 'refresh_token', refresh_token: refreshToken });
    expectOAuthError(down, 503, 'temporarily_unavailable');
    expect(down.headers['retry-after']).toBe('7');
    expect(log.lines).toHaveLength(1);

    repository.failure = null;
    const up = await request(app)
      .post('/oauth/token')
      .type('form')
      .send({ grant_type: 'refresh_token', refresh_token: refreshToken });
    expect(up.status).toBe(200);
    expect(up.body.refresh_token).toMatch(/^rt_/);
  });

  it('answers an unexpected failure with a generic 500 and puts the details only in the log', async () => {
    const service = new BrokenService({
      ...options,
      repository: new MemoryRefreshTokenRepository(),
    });
    const log = capture();
    const app = express().use('/auth', createRefreshRouter({ service, logger: log.logger }));
    const response = await request(app).post('/auth/token').send({ refresh_token: 'rt_abc' });
    expect(response.status).toBe(500);
    expect(response.body).toEqual({
      error: 'server_error',
      error_description: 'The server could not complete the request.',
    });
    expectNoStore(response);
    expect(response.text).not.toContain('hunter2');
    expect(response.text).not.toContain('rt_abc');
    expect(log.lines).toHaveLength(1);
    expect(JSON.stringify(log.lines[0]?.object)).not.toContain('rt_abc');
    expect((log.lines[0]?.object as { err: Error }).err.message).toContain(
      'cannot read properties',
    );
  });

  it('keeps working behind the app’s own JSON parser with a larger limit', async () => {
    const service = new RotationService({
      ...options,
      repository: new MemoryRefreshTokenRepository(),
    });
    const app = express()
      .use(express.json({ limit: '1mb' }))
      .use('/auth', createRefreshRouter({ service }));
    const { refreshToken } = await service.issue({ userId: 'u1' });
    const json = await request(app).post('/auth/token').send({ refresh_token: refreshToken });
    expect(json.status).toBe(200);
    const form = await request(app)
      .post('/auth/token')
      .type('form')
      .send({ grant_type: 'refresh_token', refresh_token: json.body.refresh_token });
    expect(form.status).toBe(200);
  });

  it('leaves the app’s other routes alone when mounted at the root', async () => {
    const service = new RotationService({
      ...options,
      repository: new MemoryRefreshTokenRepository(),
    });
    const app = express()
      .use(createRefreshRouter({ service }))
      .get('/hello', (_req, res) => void res.json({ ok: true }));
    const hello = await request(app).get('/hello');
    expect(hello.status).toBe(200);
    expect(hello.headers['cache-control']).toBeUndefined();
  });

  it('maps every library error code in one table', () => {
    const table = Object.fromEntries(
      (
        [
          ['invalid_request', 400, 'invalid_request'],
          ['unsupported_grant_type', 400, 'unsupported_grant_type'],
          ['invalid_grant', 400, 'invalid_grant'],
          ['malformed_token', 400, 'invalid_grant'],
          ['invalid_token', 401, 'invalid_token'],
          ['not_found', 404, 'not_found'],
          ['store_unavailable', 503, 'temporarily_unavailable'],
          ['conflict', 500, 'server_error'],
          ['invalid_options', 500, 'server_error'],
          ['invalid_dpop_proof', 400, 'invalid_dpop_proof'],
          ['use_dpop_nonce', 400, 'use_dpop_nonce'],
        ] as const
      ).map(([code, status, error]) => [code, { status, error }]),
    );
    for (const [code, expected] of Object.entries(table)) {
      const http = toHttpError(
        new RefreshRotationError(code as never, `internal detail of ${code}`),
      );
      expect({ code, status: http.status, error: http.body.error }).toEqual({ code, ...expected });
      // Our own texts, safe to show: the DPoP verifier never echoes the header.
      if (!['invalid_request', 'invalid_dpop_proof', 'use_dpop_nonce'].includes(code))
        expect(http.body.error_description).not.toContain('internal detail');
    }
    expect(toHttpError(new Error('boom')).status).toBe(500);
  });
});

describe('DPoP errors in the table', () => {
  const proofError = new InvalidDpopProofError('the DPoP proof is for another URL');
  const nonceError = new UseDpopNonceError('fresh-nonce');

  it('answer 400 with an OAuth error body at the token endpoint, the nonce in DPoP-Nonce', () => {
    expect(toHttpError(proofError)).toEqual({
      status: 400,
      body: { error: 'invalid_dpop_proof', error_description: 'the DPoP proof is for another URL' },
      headers: {},
      log: null,
    });
    const nonce = toHttpError(nonceError);
    expect(nonce.status).toBe(400);
    expect(nonce.body.error).toBe('use_dpop_nonce');
    expect(nonce.headers).toEqual({ 'DPoP-Nonce': 'fresh-nonce' });
  });

  it('answer 401 with a DPoP challenge naming the algorithms at a resource (RFC 9449 §7.1)', () => {
    const context = { endpoint: 'resource', dpopAlgorithms: ['ES256', 'EdDSA'] } as const;
    expect(toHttpError(proofError, 5, context).headers).toEqual({
      'WWW-Authenticate': 'DPoP error="invalid_dpop_proof", algs="ES256 EdDSA"',
    });
    const nonce = toHttpError(nonceError, 5, { endpoint: 'resource' });
    expect(nonce.status).toBe(401);
    expect(nonce.headers).toEqual({
      'WWW-Authenticate': 'DPoP error="use_dpop_nonce", algs="ES256 EdDSA RS256 PS256"',
      'DPoP-Nonce': 'fresh-nonce',
    });
  });

  it('challenge an invalid token with DPoP when asked, with Bearer otherwise', () => {
    const invalid = new InvalidAccessTokenError();
    expect(toHttpError(invalid).headers['WWW-Authenticate']).toBe('Bearer error="invalid_token"');
    expect(
      toHttpError(invalid, 5, { endpoint: 'resource', challenge: 'DPoP' }).headers[
        'WWW-Authenticate'
      ],
    ).toBe('DPoP error="invalid_token", algs="ES256 EdDSA RS256 PS256"');
  });
});
