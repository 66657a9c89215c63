/**
 * How many database commands one refresh costs, counted (not timed) with the driver's command
 * monitoring, through the token router over HTTP on the real MongoDB-wire server
 * (docs/architecture.md, "A refresh"): on the MongoDB write strategy a refresh of the current token
 * is one find-and-modify on `refresh_tokens`, a token we did not mint costs nothing, and the slow
 * paths stay small. The test server is FerretDB v1, so each strategy is forced with
 * `revocationGuard`.
 */
import express, { type Express } from 'express';
import type { mongo } from 'mongoose';
import request from 'supertest';
import { createRefreshRouter } from '../../src/adapters/express';
import { InlineTokenJobs, MemoryDPoPReplayCache } from '../../src/adapters/memory';
import { MongooseRefreshTokenRepository, MongooseVersionStore } from '../../src/adapters/mongoose';
import type { RevocationGuardMode } from '../../src/adapters/mongoose';
import { TokenCodec } from '../../src/domain/token-codec';
import { RotationService } from '../../src/rotation-service';
import { aSecret, tamperToken } from '../support/builders';
import { makeProof, proofKey } from '../support/dpop-proofs';
import { FakeClock } from '../support/fake-clock';
import { openTestDatabase, uniqueName } from '../support/services';

const silent = { info() {}, warn() {}, error() {} };
const refreshSecret = aSecret();

let db: Awaited<ReturnType<typeof openTestDatabase>>;
let commands: mongo.CommandStartedEvent[] = [];
const record = (event: mongo.CommandStartedEvent) => commands.push(event);

beforeAll(async () => {
  db = await openTestDatabase({ monitorCommands: true });
  db.connection.getClient().on('commandStarted', record);
});

afterAll(async () => {
  db.connection.getClient().off('commandStarted', record);
  await db.close();
});

interface Harness {
  app: Express;
  clock: FakeClock;
  service: RotationService;
  /** The commands on the token collections (records and revocation notes) while `work` runs. */
  count(work: () => Promise<unknown>): Promise<{ tokens: string[]; versions: string[] }>;
}

const TOKEN_URL = 'https://api.example.com/auth/token';

async function harness(
  revocationGuard: RevocationGuardMode,
  refreshToken: { reuseGrace?: string } = {},
  dpop = false,
): Promise<Harness> {
  const clock = new FakeClock(new Date());
  const collectionName = uniqueName('tokens');
  const versionsName = uniqueName('versions');
  const repository = new MongooseRefreshTokenRepository(db.connection, {
    collectionName,
    revocationGuard,
    clock,
  });
  await repository.ensureIndexes();
  const service = new RotationService({
    repository,
    versions: new MongooseVersionStore(db.connection, { collectionName: versionsName }),
    revocationCache: { ttl: '10m' },
    jobs: new InlineTokenJobs(repository),
    clock,
    accessToken: { algorithm: 'HS256', secret: 'count-access-secret-0123456789abcdef0123' },
    refreshToken: { secrets: [refreshSecret], ...refreshToken },
  });
  const app = express();
  app.use(
    '/auth',
    createRefreshRouter({
      service,
      cookie: false,
      logger: silent,
      dpop: dpop
        ? { tokenEndpointUrl: TOKEN_URL, replayCache: new MemoryDPoPReplayCache() }
        : undefined,
    }),
  );
  const on = (names: string[]) => (event: mongo.CommandStartedEvent) =>
    names.includes(String(event.command[event.commandName]));
  return {
    app,
    clock,
    service,
    async count(work) {
      commands = [];
      await work();
      const seen = commands;
      commands = [];
      return {
        tokens: seen
          .filter(on([collectionName, `${collectionName}_revocations`]))
          .map((e) => e.commandName),
        versions: seen.filter(on([versionsName])).map((e) => e.commandName),
      };
    },
  };
}

function refresh(app: Express, token: string, proof?: string) {
  const call = request(app).post('/auth/token').send({ refresh_token: token });
  return proof === undefined ? call : call.set('DPoP', proof);
}

/** A logged-in session whose first refresh has run, so the version cache is warm. */
async function warmSession(h: Harness): Promise<{ previous: string; current: string }> {
  const login = await h.service.issue({ userId: uniqueName('user') });
  h.clock.advance('1m');
  const first = await refresh(h.app, login.refreshToken);
  expect(first.status).toBe(200);
  return { previous: login.refreshToken, current: first.body.refresh_token as string };
}

describe('database commands per refresh, MongoDB write strategy (guard off)', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await harness('off');
  });

  it('a refresh of the current token is exactly one findAndModify on refresh_tokens, and no version read', async () => {
    const { current } = await warmSession(h);
    h.clock.advance('1m');
    let answer: request.Response | undefined;
    const counted = await h.count(async () => {
      answer = await refresh(h.app, current);
    });
    expect(answer?.status).toBe(200);
    expect(counted).toEqual({ tokens: ['findAndModify'], versions: [] });
  });

  it('a forged token (its tag made without our secret) costs no command at all', async () => {
    const { current } = await warmSession(h);
    const forged = tamperToken(current, (body) => {
      body[30] = (body[30] as number) ^ 1;
    });
    let answer: request.Response | undefined;
    const counted = await h.count(async () => {
      answer = await refresh(h.app, forged);
    });
    expect(answer?.status).toBe(400);
    expect(answer?.body).toMatchObject({ error: 'invalid_grant' });
    expect(counted).toEqual({ tokens: [], versions: [] });
  });

  it('a token minted with our secret that the session never had costs the miss and one read, and writes nothing', async () => {
    const { current } = await warmSession(h);
    const parsed = new TokenCodec([refreshSecret]).parse(current);
    const never = new TokenCodec([refreshSecret]).mint(parsed.sessionId, parsed.generation).token;
    let answer: request.Response | undefined;
    const counted = await h.count(async () => {
      answer = await refresh(h.app, never);
    });
    expect(answer?.status).toBe(400);
    expect(answer?.body).toMatchObject({ error: 'invalid_grant' });
    expect(counted).toEqual({ tokens: ['findAndModify', 'find'], versions: [] });
  });

  it('a straggler inside the reuse grace costs at most 3 commands and gets the current token', async () => {
    const { previous, current } = await warmSession(h);
    let answer: request.Response | undefined;
    const counted = await h.count(async () => {
      answer = await refresh(h.app, previous);
    });
    expect(answer?.status).toBe(200);
    expect(answer?.body.refresh_token).toBe(current);
    expect(counted.tokens.length).toBeLessThanOrEqual(3);
    expect(counted.versions).toEqual([]);
  });

  it('an expired session costs at most 3 commands', async () => {
    const { current } = await warmSession(h);
    h.clock.advance('31d');
    let answer: request.Response | undefined;
    const counted = await h.count(async () => {
      answer = await refresh(h.app, current);
    });
    expect(answer?.status).toBe(400);
    expect(counted.tokens.length).toBeLessThanOrEqual(3);
  });

  it('a reused token costs at most 3 commands, and the session is revoked', async () => {
    const strict = await harness('off', { reuseGrace: '0s' });
    const { previous, current } = await warmSession(strict);
    let answer: request.Response | undefined;
    const counted = await strict.count(async () => {
      answer = await refresh(strict.app, previous);
    });
    expect(answer?.status).toBe(400);
    expect(counted.tokens.length).toBeLessThanOrEqual(3);
    expect((await refresh(strict.app, current)).status).toBe(400);
  });
});

describe('database commands per refresh, FerretDB v1 write strategy (guard on)', () => {
  it('a refresh of the current token is at most 2 commands: the findAndModify and the revocation-note read', async () => {
    const h = await harness('on');
    const { current } = await warmSession(h);
    h.clock.advance('1m');
    let answer: request.Response | undefined;
    const counted = await h.count(async () => {
      answer = await refresh(h.app, current);
    });
    expect(answer?.status).toBe(200);
    expect(counted.tokens.length).toBeLessThanOrEqual(2);
    expect(counted.tokens[0]).toBe('findAndModify');
    expect(counted.versions).toEqual([]);
  });
});

describe('database commands per refresh of a DPoP-bound session (guard off)', () => {
  it('with a proof by its key: one findAndModify whose filter holds the binding; without one: the miss and a read, no write', async () => {
    const h = await harness('off', {}, true);
    const key = await proofKey('ES256');
    const login = await h.service.issue({ userId: uniqueName('user'), dpop: { jkt: key.jkt } });
    h.clock.advance('1m');
    const first = await refresh(h.app, login.refreshToken, await makeProof(key, TOKEN_URL));
    expect(first.status).toBe(200);
    expect(first.body.token_type).toBe('DPoP');

    const monitored: mongo.CommandStartedEvent[] = [];
    const keep = (event: mongo.CommandStartedEvent) => monitored.push(event);
    const lastFilter = () =>
      monitored.filter((event) => event.commandName === 'findAndModify').at(-1)?.command.query;
    db.connection.getClient().on('commandStarted', keep);

    h.clock.advance('1m');
    let answer: request.Response | undefined;
    const proof = await makeProof(key, TOKEN_URL);
    const counted = await h.count(async () => {
      answer = await refresh(h.app, first.body.refresh_token as string, proof);
    });
    expect(answer?.status).toBe(200);
    expect(counted).toEqual({ tokens: ['findAndModify'], versions: [] });
    // The binding is in the filter of the one command: unbound, or bound to this key.
    expect(lastFilter()?.$or).toEqual([
      { binding: null },
      { 'binding.method': 'dpop', 'binding.jkt': key.jkt },
    ]);

    h.clock.advance('1m');
    let refused: request.Response | undefined;
    const withoutProof = await h.count(async () => {
      refused = await refresh(h.app, answer!.body.refresh_token as string);
    });
    db.connection.getClient().off('commandStarted', keep);
    expect(refused?.status).toBe(400);
    expect(refused?.body).toMatchObject({ error: 'invalid_dpop_proof' });
    expect(withoutProof).toEqual({ tokens: ['findAndModify', 'find'], versions: [] });
    // Without a proof the filter admits an unbound record, or a device-bound one inside its bound
    // lifetime: the binding is in the one command.
    expect(lastFilter()?.$or).toEqual([
      { binding: null },
      { 'binding.method': 'dbsc', 'binding.boundUntil': { $gt: expect.any(Date) } },
    ]);

    const after = await refresh(
      h.app,
      answer!.body.refresh_token as string,
      await makeProof(key, TOKEN_URL),
    );
    expect(after.status).toBe(200);
  });
});

describe('database commands per refresh of a device-bound (DBSC) session (guard off)', () => {
  const device = { jkt: 'D'.repeat(43), jwk: { kty: 'EC', crv: 'P-256', x: 'x', y: 'y' } };

  it('POST /token with the bound cookie is one findAndModify whose filter holds the bound lifetime; a refresh by proof is a read and one findAndModify', async () => {
    const h = await harness('off');
    const { current } = await warmSession(h);
    let sessionId = '';
    const bound = await h.count(async () => {
      ({ sessionId } = await h.service.bindDevice(current, async () => device, 600_000));
    });
    expect(bound).toEqual({ tokens: ['findAndModify'], versions: [] });

    const monitored: mongo.CommandStartedEvent[] = [];
    const keep = (event: mongo.CommandStartedEvent) => monitored.push(event);
    db.connection.getClient().on('commandStarted', keep);
    h.clock.advance('1m');
    let answer: request.Response | undefined;
    const counted = await h.count(async () => {
      answer = await refresh(h.app, current);
    });
    expect(answer?.status).toBe(200);
    expect(counted).toEqual({ tokens: ['findAndModify'], versions: [] });
    const query = monitored.filter((event) => event.commandName === 'findAndModify').at(-1)?.command
      .query as Record<string, unknown>;
    expect(query.$or).toEqual([
      { binding: null },
      { 'binding.method': 'dbsc', 'binding.boundUntil': { $gt: h.clock.now() } },
    ]);

    h.clock.advance('10m');
    const lapsed = await h.count(async () => {
      answer = await refresh(h.app, answer!.body.refresh_token as string);
    });
    db.connection.getClient().off('commandStarted', keep);
    expect(answer?.status).toBe(400);
    // The slow path: the miss and a read, no write (10 minutes on, the version cache has expired).
    expect(lapsed.tokens).toEqual(['findAndModify', 'find']);

    const byProof = await h.count(() =>
      h.service.refreshByDeviceProof(sessionId, async () => undefined, 600_000),
    );
    // The stored key must be read before the proof can be verified: a read, then the one write.
    expect(byProof).toEqual({ tokens: ['find', 'findAndModify'], versions: [] });
  });
});
