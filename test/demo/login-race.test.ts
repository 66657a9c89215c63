/**
 * Logins with the old password racing a password change (docs/architecture.md, "Revocation and
 * versions"), over real HTTP: once on the in-memory adapters, once on the real MongoDB-wire server
 * with BullMQ on the real Redis and a real worker consuming the revoke-all job. Logins start every
 * few milliseconds while `POST /auth/password` runs; after its 204, not one session they produced
 * may refresh.
 *
 * Without the version snapshot, a login whose bcrypt compare straddles the change reads the
 * user's minimum version after the bump and is born current: it survives the change.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { uniqueName } from '../support/services';
import { bothStores, type TestApp } from '../support/app-harness';

const OLD_PASSWORD = 'old password, about to leak';
const NEW_PASSWORD = 'new password after the change';
const CHANGES = 6;
/** A login starts this often while a change runs. */
const LOGIN_EVERY_MS = 3;
/** bcrypt cost here: slow enough that a compare spans several logins (the tests elsewhere use 4). */
const BCRYPT_ROUNDS = 8;

interface Login {
  startedAt: number;
  answeredAt: number;
  status: number;
  refreshToken: string | undefined;
}

interface Figures {
  changes: number;
  logins: number;
  loginsAnswered200: number;
  answered200AfterChange: number;
  straddling: number;
  refusedByRace: number;
  refreshedAfterChange: number;
}

describe.each(
  // The MongoDB app with the production one-second version cache.
  bothStores({ overrides: { bcryptRounds: BCRYPT_ROUNDS, revocationCacheTtlMs: 1_000 } }),
)('logins racing a password change on %s', (name, start) => {
  let backend: TestApp;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    backend = await start();
    server = backend.app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await backend?.close();
  });

  async function post(
    path: string,
    body: unknown,
    accessToken?: string,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(base + path, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(accessToken ? { authorization: `Bearer ${accessToken}` } : {}),
      },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : {} };
  }

  async function login(email: string, password: string): Promise<Login> {
    const startedAt = performance.now();
    const answer = await post('/auth/login', { email, password });
    return {
      startedAt,
      answeredAt: performance.now(),
      status: answer.status,
      refreshToken: answer.body.refresh_token as string | undefined,
    };
  }

  /** One user, one password change, logins with the old password all through it. */
  async function race(figures: Figures): Promise<void> {
    const email = `${uniqueName('race')}@example.com`;
    expect((await post('/auth/register', { email, password: OLD_PASSWORD })).status).toBe(202);
    const first = await post('/auth/login', { email, password: OLD_PASSWORD });
    expect(first.status).toBe(200);

    const logins: Array<Promise<Login>> = [];
    let changedAt: number | undefined;
    const change = post(
      '/auth/password',
      { currentPassword: OLD_PASSWORD, newPassword: NEW_PASSWORD },
      String(first.body.access_token),
    ).then((answer) => {
      changedAt = performance.now();
      return answer;
    });
    // From just before the change until a little after its answer.
    logins.push(login(email, OLD_PASSWORD));
    while (changedAt === undefined) {
      await new Promise((resolve) => setTimeout(resolve, LOGIN_EVERY_MS));
      logins.push(login(email, OLD_PASSWORD));
    }
    expect((await change).status).toBe(204);
    const done = await Promise.all(logins);
    const after = changedAt;

    // Every refresh below starts after the change's 204 was received.
    const refreshed = await Promise.all(
      done
        .filter((l) => l.status === 200)
        .map(async (l) => {
          const answer = await post('/auth/token', { refresh_token: l.refreshToken });
          return answer.status;
        }),
    );
    figures.changes += 1;
    figures.logins += done.length;
    figures.loginsAnswered200 += done.filter((l) => l.status === 200).length;
    figures.answered200AfterChange += done.filter(
      (l) => l.status === 200 && l.answeredAt > after,
    ).length;
    figures.straddling += done.filter((l) => l.startedAt < after && l.answeredAt > after).length;
    figures.refusedByRace += done.filter((l) => l.status === 401 && l.startedAt < after).length;
    figures.refreshedAfterChange += refreshed.filter((status) => status === 200).length;
    for (const l of done) expect([200, 401]).toContain(l.status);

    // Control: the new password works, and its session refreshes.
    const fresh = await login(email, NEW_PASSWORD);
    expect(fresh.status).toBe(200);
    expect((await post('/auth/token', { refresh_token: fresh.refreshToken })).status).toBe(200);
  }

  it('not one session from a login with the old password refreshes after the change answered 204', async () => {
    const figures: Figures = {
      changes: 0,
      logins: 0,
      loginsAnswered200: 0,
      answered200AfterChange: 0,
      straddling: 0,
      refusedByRace: 0,
      refreshedAfterChange: 0,
    };
    for (let i = 0; i < CHANGES; i += 1) await race(figures);
    process.stdout.write(`SECURITY login-race ${JSON.stringify({ backend: name, ...figures })}\n`);

    // The race was really run: logins were in flight when the change answered.
    expect(figures.straddling).toBeGreaterThan(0);
    expect(figures.refreshedAfterChange).toBe(0);
  }, 120_000);
});
