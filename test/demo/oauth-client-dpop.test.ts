/**
 * Issue 26, item 6: DPoP (RFC 9449) as a real client meets it. openid-client v6 (ESM-only: its own
 * node process, test/support/oauth-client-dpop.mjs) makes its own key, binds a bearer session with
 * a proof-carrying refresh and calls `/me` with the DPoP scheme, against the demo app over real
 * HTTP, on both stores (the replay cache is Redis with REDIS_URL, memory otherwise). The test then
 * tries the bound tokens without the key; the login route's proof is checked with proofs of our own.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { Express } from 'express';
import request from 'supertest';
import { ath, makeProof, proofKey } from '../support/dpop-proofs';
import { killGroup } from '../support/process-group';
import { freePort } from '../support/servers';
import { mongoUri, redisUrl } from '../support/services';
import {
  PASSWORD,
  refreshForm,
  signUp,
  startApp,
  useApp,
  type AppOptions,
  type TestApp,
} from '../support/app-harness';

interface Tokens {
  token_type: string;
  access_token: string;
  refresh_token: string;
}

interface Bound {
  metadata: Record<string, unknown>;
  bound: Tokens;
  again: Tokens;
  me: { status: number; body: unknown };
}

interface After {
  after: Tokens;
  me: { status: number; body: unknown };
}

/** test/support/oauth-client-dpop.mjs in its own process group: one JSON line per phase. */
class DPoPClient {
  private readonly child: ChildProcessWithoutNullStreams;
  private out = '';
  private err = '';
  private readonly waiting: Array<(line: string) => void> = [];
  private readonly exited: Promise<number | null>;
  private readonly timer: NodeJS.Timeout;

  constructor(issuer: string, refreshToken: string) {
    this.child = spawn(
      process.execPath,
      [join(__dirname, '..', 'support', 'oauth-client-dpop.mjs'), issuer, refreshToken],
      { detached: true, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    this.child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      this.out += chunk;
      this.deliver();
    });
    this.child.stderr.setEncoding('utf8').on('data', (chunk: string) => (this.err += chunk));
    this.exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.timer = setTimeout(() => this.kill(), 20_000);
  }

  private deliver(): void {
    let end = this.out.indexOf('\n');
    while (end !== -1 && this.waiting.length > 0) {
      this.waiting.shift()!(this.out.slice(0, end));
      this.out = this.out.slice(end + 1);
      end = this.out.indexOf('\n');
    }
  }

  /** The next JSON line, or a rejection with stderr if the client exits first. */
  next<T>(): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting.push((line) => resolve(JSON.parse(line) as T));
      this.deliver();
      void this.exited.then((code) =>
        reject(new Error(`oauth-client-dpop.mjs exited ${code}: ${this.err}${this.out}`)),
      );
    });
  }

  /** Let the client go on to its next phase. */
  proceed(): void {
    this.child.stdin.end('go\n');
  }

  async exit(): Promise<number | null> {
    const code = await this.exited;
    clearTimeout(this.timer);
    return code;
  }

  kill(): void {
    clearTimeout(this.timer);
    killGroup(this.child.pid, 'SIGKILL');
  }
}

/** The claims of a JWT, read without verifying. */
function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
}

/** The two ways the demo runs; with Redis, proofs are claimed in a RedisDPoPReplayCache. */
const STORES: Array<[string, () => AppOptions]> = [
  ['in-memory adapters, memory replay cache', () => ({})],
  [
    'MongoDB-wire server + BullMQ, Redis replay cache',
    () => ({ mongoUrl: mongoUri(), redisUrl: redisUrl() }),
  ],
];

describe.each(STORES)('DPoP clients of the demo app (%s)', (_title, stores) => {
  let backend: TestApp;
  let server: Server;
  let origin: string;
  let client: DPoPClient | undefined;

  beforeAll(async () => {
    // PUBLIC_URL is read before the app listens: pick the port first, and listen on it too.
    const port = await freePort();
    origin = `http://127.0.0.1:${port}`;
    backend = await startApp({ ...stores(), env: { PORT: String(port), PUBLIC_URL: origin } });
    server = await new Promise<Server>((resolve) => {
      const listening = backend.app.listen(port, '127.0.0.1', () => resolve(listening));
    });
  });

  afterEach(() => {
    client?.kill();
    client = undefined;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => {
      server?.close(() => resolve());
      server?.closeAllConnections();
    });
    await backend?.close();
  });

  it('openid-client binds a session with a proof, refreshes and calls /me with DPoP; without the key its tokens are refused and the session lives on', async () => {
    const { tokens, id, email } = await signUp(backend.app);
    client = new DPoPClient(origin, tokens.refresh_token!);
    const run = await client.next<Bound>();
    expect(run.metadata).toEqual(
      expect.objectContaining({
        issuer: origin,
        token_endpoint: `${origin}/auth/token`,
        dpop_signing_alg_values_supported: expect.arrayContaining(['ES256']),
      }),
    );
    expect(run.bound.token_type).toBe('dpop');
    expect(run.again.token_type).toBe('dpop');
    const jkt = (claimsOf(run.again.access_token).cnf as { jkt?: unknown } | undefined)?.jkt;
    expect(typeof jkt).toBe('string');
    expect(run.me).toEqual({ status: 200, body: { id, email } });

    const stolen = await refreshForm(backend.app, run.again.refresh_token);
    expect([stolen.status, stolen.body.error]).toEqual([400, 'invalid_dpop_proof']);
    const bearer = await request(backend.app)
      .get('/me')
      .set('Authorization', `Bearer ${run.again.access_token}`);
    expect(bearer.status).toBe(401);

    client.proceed();
    const after = await client.next<After>();
    expect(after.after.token_type).toBe('dpop');
    expect(after.after.refresh_token).not.toBe(run.again.refresh_token);
    expect(after.me).toEqual({ status: 200, body: { id, email } });
    expect(await client.exit()).toBe(0);
  });

  it('the login route binds the session to the proof it carries, refuses a bad or replayed proof, and keeps bearer logins', async () => {
    const { email } = await signUp(backend.app);
    const key = await proofKey();
    const proof = await makeProof(key, `${origin}/auth/login`);
    const login = () =>
      request(backend.app)
        .post('/auth/login')
        .set('DPoP', proof)
        .send({ email, password: PASSWORD });
    const bound = await login();
    expect([bound.status, bound.body.token_type]).toEqual([200, 'DPoP']);
    expect(claimsOf(bound.body.access_token as string).cnf).toEqual({ jkt: key.jkt });
    const replayed = await login();
    expect([replayed.status, replayed.body.error]).toEqual([400, 'invalid_dpop_proof']);

    const elsewhere = await makeProof(key, `${origin}/auth/token`);
    const wrongUrl = await request(backend.app)
      .post('/auth/login')
      .set('DPoP', elsewhere)
      .send({ email, password: PASSWORD });
    expect([wrongUrl.status, wrongUrl.body.error]).toEqual([400, 'invalid_dpop_proof']);

    const accessToken = bound.body.access_token as string;
    const me = await request(backend.app)
      .get('/me')
      .set('Authorization', `DPoP ${accessToken}`)
      .set(
        'DPoP',
        await makeProof(key, `${origin}/me`, {
          claims: { htm: 'GET', ath: ath(accessToken) },
        }),
      );
    expect(me.status).toBe(200);

    const plain = await request(backend.app)
      .post('/auth/login')
      .send({ email, password: PASSWORD });
    expect([plain.status, plain.body.token_type]).toEqual([200, 'Bearer']);
    const bearerMe = await request(backend.app)
      .get('/me')
      .set('Authorization', `Bearer ${plain.body.access_token as string}`);
    expect(bearerMe.status).toBe(200);
  });
});

describe('DPoP replay across demo instances sharing Redis', () => {
  const backend = useApp(() => startApp({ mongoUrl: mongoUri(), redisUrl: redisUrl() }));

  it('a login proof used on one instance is refused by another', async () => {
    const other = await backend.anotherInstance();
    const { email } = await signUp(backend.app);
    const key = await proofKey();
    // PUBLIC_URL's default: no ACCESS_TOKEN_ISSUER, PORT 3000.
    const login = (app: Express, proof: string) =>
      request(app).post('/auth/login').set('DPoP', proof).send({ email, password: PASSWORD });
    const proof = await makeProof(key, 'http://localhost:3000/auth/login');
    expect((await login(backend.app, proof)).status).toBe(200);
    const replayed = await login(other.app, proof);
    expect([replayed.status, replayed.body.error]).toEqual([400, 'invalid_dpop_proof']);
    const fresh = await login(other.app, await makeProof(key, 'http://localhost:3000/auth/login'));
    expect([fresh.status, fresh.body.token_type]).toEqual([200, 'DPoP']);
  });
});
