/**
 * Device Bound Session Credentials in a real Chromium (Debian's /usr/bin/chromium, driven by
 * playwright-core), against the token router with `cookie.dbsc` on the real MongoDB-wire server,
 * served over HTTPS on localhost with a throwaway certificate (Chromium speaks DBSC over HTTPS
 * only, and only with a certificate it trusts: `--ignore-certificate-errors-spki-list`). The
 * software key provider stands in for a TPM. CDP's `Network.deviceBoundSessionEventOccurred`
 * shows what the browser did. Never skips: a Chromium that stops registering fails the test with
 * the flags and its version.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { createRefreshRouter, type RefreshRouter } from '../../src/adapters/express';
import { InlineTokenJobs } from '../../src/adapters/memory';
import { MongooseRefreshTokenRepository, MongooseVersionStore } from '../../src/adapters/mongoose';
import { RotationService } from '../../src/rotation-service';
import { throwawayCertificate } from '../support/certificate';
import { DBSC_FEATURES, kindOf, type DbscEvent } from '../support/dbsc-events';
import { ShiftedClock } from '../support/fake-clock';
import { ACCESS_SECRET, REFRESH_SECRET } from '../support/secrets';
import { openTestDatabase, uniqueName } from '../support/services';
import { waitFor } from '../support/wait-for';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const MINUTE = 60_000;

jest.setTimeout(60_000);

const PAGE = `<!doctype html><title>dbsc</title>
<script>
async function login() {
  const r = await fetch('/auth/login', { method: 'POST', headers: { 'X-Token-Transport': 'cookie' } });
  return r.status;
}
async function refresh() {
  const r = await fetch('/auth/token', { method: 'POST', headers: { 'X-Refresh-CSRF': '1' } });
  return { status: r.status, body: await r.json() };
}
</script>`;

describe('DBSC in Chromium: a session bound to the browser’s key', () => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  let dir: string;
  let server: Server;
  let origin: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let service: RotationService;
  let repository: MongooseRefreshTokenRepository;
  const clock = new ShiftedClock();
  const events: DbscEvent[] = [];
  const requests: string[] = [];
  let userId: string;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(
        `Chromium not found at ${CHROMIUM}: install it with \`apt-get install chromium\` (Debian), or set CHROMIUM_PATH.`,
      );
    db = await openTestDatabase();
    repository = new MongooseRefreshTokenRepository(db.connection, { clock });
    await repository.ensureIndexes();
    service = new RotationService({
      repository,
      versions: new MongooseVersionStore(db.connection),
      jobs: new InlineTokenJobs(repository),
      clock,
      revocationCache: { ttl: 0 },
      accessToken: { secret: ACCESS_SECRET },
      refreshToken: { secrets: [REFRESH_SECRET] },
    });
    const router: RefreshRouter = createRefreshRouter({
      service,
      cookie: {
        path: '/auth',
        dbsc: { secret: 'dbsc-browser-test-secret-0123456789abcdef', clock },
      },
      logger: { error: () => undefined, warn: () => undefined },
    });
    userId = uniqueName('user');
    const app = express();
    app.use((req, res, next) => {
      const path = req.path;
      if (path.startsWith('/auth/dbsc/'))
        res.on('finish', () => requests.push(`${path} ${res.statusCode}`));
      next();
    });
    app.get('/', (_req, res) => void res.type('html').send(PAGE));
    app.post('/auth/login', (_req, res, next) => {
      router.issue(res, { userId }).then((body) => res.json(body), next);
    });
    app.use('/auth', router);

    dir = mkdtempSync(join(tmpdir(), 'dbsc-test-'));
    const { key, cert, spki } = throwawayCertificate(dir);
    server = createServer({ key, cert }, app).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    origin = `https://localhost:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [`--enable-features=${DBSC_FEATURES}`, `--ignore-certificate-errors-spki-list=${spki}`],
    });
    context = await browser.newContext();
    page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    cdp.on('Network.deviceBoundSessionEventOccurred' as never, (event: DbscEvent) => {
      events.push(event);
    });
    await cdp.send('Network.enable');
    await cdp.send('Network.enableDeviceBoundSessions' as never, { enable: true } as never);
    await page.goto(`${origin}/`);
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    if (server) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    await db?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function sessionId(): Promise<string> {
    const [session] = await service.listSessions(userId);
    if (!session) throw new Error('no live session');
    return session.id;
  }

  it('registers at login, refreshes by proof when the cookie is gone, refuses a copy after boundTtl, and ends with continue:false', async () => {
    expect(await page.evaluate('login()')).toBe(200);
    try {
      await waitFor(async () => events.some((event) => event.creationEventDetails), {
        what: 'the registration event',
        timeoutMs: 10_000,
      });
    } catch {
      throw new Error(
        `Chromium ${browser.version()} did not register a device-bound session within 10 s ` +
          `(requests: ${JSON.stringify(requests)}; events: ${JSON.stringify(events.map(kindOf))}). ` +
          `It needs --enable-features=${DBSC_FEATURES} and HTTPS with a trusted certificate ` +
          '(--ignore-certificate-errors-spki-list); a Chromium change may have moved them.',
      );
    }
    const id = await sessionId();
    const record = await repository.findBySessionId(id);
    expect(record?.binding).toMatchObject({ method: 'dbsc', jwk: { kty: 'EC', crv: 'P-256' } });
    expect(events.map(kindOf)).toEqual(['creation:Success']);
    expect(events[0]!.sessionId).toBe(id);

    // The bound cookie gone: the page's refresh is held, refreshed by proof, then answered 200.
    const [stolen] = await context.cookies();
    await context.clearCookies();
    const refreshed = (await page.evaluate('refresh()')) as { status: number };
    expect(refreshed.status).toBe(200);
    await waitFor(async () => events.length >= 3, { what: 'the refresh events', timeoutMs: 5_000 });
    expect(events.map(kindOf).slice(1, 3)).toEqual([
      'challenge:Success',
      'refresh:Refreshed:Success',
    ]);
    expect(requests).toEqual([
      '/auth/dbsc/register 200',
      '/auth/dbsc/refresh 403',
      '/auth/dbsc/refresh 200',
    ]);

    // A copy of the cookie in a profile without the key stops working after boundTtl.
    clock.advance(11 * MINUTE);
    const thief = await browser.newContext();
    try {
      const [current] = await context.cookies();
      await thief.addCookies([current!]);
      const thiefPage = await thief.newPage();
      await thiefPage.goto(`${origin}/`);
      const refused = (await thiefPage.evaluate('refresh()')) as {
        status: number;
        body: { error?: string };
      };
      expect(refused).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    } finally {
      await thief.close();
    }
    expect(stolen).toBeDefined();

    // Revoked: the refresh by proof answers {"continue": false} and the browser ends the session.
    await service.revokeSession(id);
    await context.clearCookies();
    const ended = (await page.evaluate('refresh()')) as { status: number };
    expect(ended.status).toBe(400);
    await waitFor(async () => events.some((event) => event.terminationEventDetails), {
      what: 'the termination event',
      timeoutMs: 5_000,
    });
    expect(requests.at(-1)).toBe('/auth/dbsc/refresh 200');
    expect(events.map(kindOf).at(-1)).toBe('termination:ServerRequested');
  });
});
