/**
 * The demo page in a real Chromium (Debian's /usr/bin/chromium, driven by playwright-core): one
 * browser context is one profile, its pages are tabs sharing the refresh cookie. The example app
 * runs on the real MongoDB-wire server with BullMQ on Redis and a real worker (test/support/app-harness.ts), served
 * on http://localhost (a secure context for Chromium, so `Secure` cookies work). An attacker is
 * served from other origins: http://127.0.0.1:<other port> (cross-site) and
 * http://localhost:<other port> (same-site, other origin).
 */
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  chromium,
  type Browser,
  type BrowserContext,
  type Cookie,
  type Page,
} from 'playwright-core';
import { mongoUri, redisUrl, uniqueName } from '../support/services';
import { waitFor } from '../support/wait-for';
import { PASSWORD, signUp, startApp, type TestApp } from '../support/app-harness';
import { buildClientModule, type ClientModule } from '../support/client-module';

// What the functions passed to page.evaluate() see in the page (the project compiles without DOM types).
declare const document: {
  cookie: string;
  getElementById(id: string): { textContent: string | null } | null;
  querySelectorAll(selector: string): { length: number };
};
declare const window: {
  refreshDemo: { refresh(): Promise<boolean>; me(): Promise<boolean> };
};

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const COOKIE = '__Secure-refresh_token';
const TABS = 4;
const BURSTS = 10;
/** Time between the bursts of the uncoordinated tabs: shorter than a refresh, so bursts overlap. */
const BURST_GAP_MS = 10;
/** Network jitter in that test: a request's arrival varies by up to this much, so tabs overtake each other. */
const JITTER_MS = 80;

jest.setTimeout(60_000);

/** Requests the test holds before the app sees them: a slow tab whose cookie was attached early. */
class HeldRequests {
  private readonly held: (() => void)[] = [];
  private readonly arrivals: (() => void)[] = [];

  hold(release: () => void): void {
    this.held.push(release);
    for (const arrived of this.arrivals.splice(0)) arrived();
  }

  async arrived(count = 1): Promise<void> {
    while (this.held.length < count) await new Promise<void>((r) => this.arrivals.push(r));
  }

  releaseAll(): void {
    for (const release of this.held.splice(0)) release();
  }
}

function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(handler);
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

function portOf(server: Server): number {
  return (server.address() as AddressInfo).port;
}

function close(server: Server | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** The attacker's pages: a form posting to the victim, and an empty page to run fetches from. */
function attackerPage(victim: string, url: URL): string {
  const route = url.searchParams.get('route') ?? '/auth/logout';
  const junk = url.searchParams.get('junk') === '1';
  if (url.pathname === '/form') {
    return `<!doctype html><form id="f" method="POST" action="${victim}${route}">
      ${junk ? '<input name="refresh_token" value="junk">' : ''}
      <input name="grant_type" value="refresh_token"><button>Win a prize</button></form>`;
  }
  return '<!doctype html><title>attacker</title>';
}

describe('the demo page in Chromium', () => {
  let browser: Browser;
  let backend: TestApp;
  let app: Server;
  let attacker: Server;
  let origin: string;
  let client: ClientModule;
  const held = new HeldRequests();
  /** Network jitter: each request reaches the app up to this many ms late (0 = none). */
  let jitterMs = 0;
  /** POSTs the app received from pages of other origins: proof the attacks reached it. */
  const foreignPosts: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `Chromium not found at ${CHROMIUM}: the browser tests need it. Install it with ` +
          '`apt-get install chromium` (Debian), or set CHROMIUM_PATH.',
      );
    }
    client = await buildClientModule();
    backend = await startApp({
      mongoUrl: mongoUri(),
      redisUrl: redisUrl(),
      overrides: { clientModule: client.file },
    });
    app = await listen((req, res) => {
      if (req.method === 'POST' && req.headers.origin && req.headers.origin !== origin)
        foreignPosts.push(`${req.headers.origin} ${req.url}`);
      // A request marked by the test waits here with the cookie the browser attached at its start.
      if (req.headers['x-test-hold']) held.hold(() => backend.app(req, res));
      else if (jitterMs > 0) setTimeout(() => backend.app(req, res), Math.random() * jitterMs);
      else backend.app(req, res);
    });
    origin = `http://localhost:${portOf(app)}`;
    attacker = await listen((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(attackerPage(origin, new URL(req.url ?? '/', 'http://attacker')));
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-dev-shm-usage'],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await close(attacker);
    await close(app);
    await backend?.close();
    client?.remove();
  });

  /* ----- helpers ----- */

  async function register(): Promise<{ id: string; email: string }> {
    const email = `${uniqueName('tab')}@example.com`;
    const response = await fetch(`${origin}/auth/register`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email, password: PASSWORD }),
    });
    // 202 whether or not the email is taken (registration does not enumerate): read the id back.
    if (response.status !== 202) throw new Error(`register answered ${response.status}`);
    const user = await backend.runtime.users.findByEmail(email);
    if (!user) throw new Error(`register answered 202 but stored no user for ${email}`);
    return { id: user.id, email };
  }

  async function signedIn(page: Page, email: string): Promise<void> {
    await page.waitForSelector('body[data-state="signed-in"]');
    await page.waitForFunction(
      (expected) => document.getElementById('who')?.textContent === expected,
      email,
    );
  }

  /** A fresh profile with `tabs` tabs of the demo page, signed in through the first one's form. */
  async function profile(tabs = 1): Promise<{
    context: BrowserContext;
    pages: Page[];
    user: { id: string; email: string };
  }> {
    const user = await register();
    const context = await browser.newContext();
    context.setDefaultTimeout(10_000);
    const first = await context.newPage();
    await first.goto(origin);
    await first.waitForSelector('body[data-state="signed-out"]');
    await first.fill('#email', user.email);
    await first.fill('#password', PASSWORD);
    await first.click('#login');
    await signedIn(first, user.email);
    const pages = [first];
    for (let tab = 1; tab < tabs; tab += 1) {
      const page = await context.newPage();
      await page.goto(origin);
      await signedIn(page, user.email);
      pages.push(page);
    }
    return { context, pages, user };
  }

  async function refreshCookie(context: BrowserContext): Promise<Cookie | undefined> {
    return (await context.cookies()).find((cookie) => cookie.name === COOKIE);
  }

  /** A cookie refresh from the tab itself, bypassing the page's lock. Resolves to the status. */
  function rawRefresh(page: Page, options: { at?: number; hold?: boolean } = {}) {
    return page.evaluate(
      async ({ at, hold }) => {
        while (Date.now() < at) await new Promise((resolve) => setTimeout(resolve, 1));
        const headers: Record<string, string> = {
          'X-Refresh-CSRF': '1',
          'X-Token-Transport': 'cookie',
        };
        if (hold) headers['X-Test-Hold'] = '1';
        const response = await fetch('/auth/token', {
          method: 'POST',
          headers,
          credentials: 'same-origin',
        });
        return response.status;
      },
      { at: options.at ?? 0, hold: options.hold ?? false },
    );
  }

  async function liveSessions(userId: string): Promise<number> {
    return (await backend.runtime.repository.listActiveForUser(userId, backend.clock.now())).length;
  }

  /* ----- tests ----- */

  it('stores the refresh cookie HttpOnly, Secure, SameSite=Strict, Path=/auth, unreadable from script', async () => {
    const { context, pages } = await profile();
    const cookie = await refreshCookie(context);
    expect(cookie).toMatchObject({
      name: COOKIE,
      domain: 'localhost',
      path: '/auth',
      httpOnly: true,
      secure: true,
      sameSite: 'Strict',
    });
    expect(cookie!.value).toMatch(/^rt_/);
    expect(cookie!.expires).toBeGreaterThan(Date.now() / 1000);
    expect(await pages[0]!.evaluate(() => document.cookie)).not.toContain('refresh');
    await context.close();
  });

  it(`${TABS} tabs refreshing through the cookie at the same moment, ${BURSTS} bursts: no tab is ever logged out`, async () => {
    const { context, pages, user } = await profile(TABS);
    jitterMs = JITTER_MS;
    const start = Date.now() + 200;
    // Every tab fires at the same instants and never waits for the other tabs: a tab whose request
    // is slow is overtaken by the others' next bursts, as independent tabs are in a real browser.
    const statuses = (
      await Promise.all(
        pages.map((page) =>
          page.evaluate(
            async ({ start, bursts, gapMs }) => {
              const answers: number[] = [];
              for (let burst = 0; burst < bursts; burst += 1) {
                const at = start + burst * gapMs;
                while (Date.now() < at) await new Promise((resolve) => setTimeout(resolve, 1));
                const response = await fetch('/auth/token', {
                  method: 'POST',
                  headers: { 'X-Refresh-CSRF': '1', 'X-Token-Transport': 'cookie' },
                  credentials: 'same-origin',
                });
                answers.push(response.status);
              }
              return answers;
            },
            { start, bursts: BURSTS, gapMs: BURST_GAP_MS },
          ),
        ),
      )
    ).flat();
    jitterMs = 0;
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    expect(statuses).toHaveLength(TABS * BURSTS);
    expect(await liveSessions(user.id)).toBe(1);
    expect(await rawRefresh(pages[0]!)).toBe(200);
    await context.close();
  });

  it(`${TABS} tabs of the page refreshing at once, ${BURSTS} bursts, coordinate: one refresh at a time, no logout`, async () => {
    const { context, pages, user } = await profile(TABS);
    let posts = 0;
    context.on('request', (request) => {
      if (request.method() === 'POST' && request.url().endsWith('/auth/token')) posts += 1;
    });
    const results: boolean[] = [];
    for (let burst = 0; burst < BURSTS; burst += 1) {
      results.push(
        ...(await Promise.all(
          pages.map((page) => page.evaluate(() => window.refreshDemo.refresh())),
        )),
      );
    }
    expect(results).toEqual(Array.from({ length: TABS * BURSTS }, () => true));
    // One tab refreshes and the others take its result; an occasional tab that comes after the
    // holder let go refreshes once more, never all four.
    expect(posts).toBeGreaterThanOrEqual(BURSTS);
    expect(posts).toBeLessThanOrEqual(BURSTS * 2);
    for (const page of pages)
      expect(await page.getAttribute('body', 'data-state')).toBe('signed-in');
    expect(await liveSessions(user.id)).toBe(1);
    await context.close();
  });

  it('a straggler tab whose cookie is two rotations old, inside the grace window, still gets the current token', async () => {
    const { context, pages, user } = await profile(3);
    const [slow, second, third] = pages as [Page, Page, Page];
    const straggler = rawRefresh(slow, { hold: true });
    await held.arrived();
    expect(await rawRefresh(second)).toBe(200);
    expect(await rawRefresh(third)).toBe(200);
    const current = (await refreshCookie(context))!.value;
    held.releaseAll();
    expect(await straggler).toBe(200);
    expect((await refreshCookie(context))!.value).toBe(current);
    expect(await liveSessions(user.id)).toBe(1);
    for (const page of pages) expect(await rawRefresh(page)).toBe(200);
    await context.close();
  });

  it('a rotated cookie presented after the grace window revokes the session in every tab', async () => {
    const { context, pages, user } = await profile(3);
    const [slow, other] = pages as [Page, Page, Page];
    const late = rawRefresh(slow, { hold: true });
    await held.arrived();
    expect(await rawRefresh(other)).toBe(200);
    backend.clock.advance(10_001); // the server's clock: past REFRESH_REUSE_GRACE (10 s)
    held.releaseAll();
    expect(await late).toBe(400);
    expect(await liveSessions(user.id)).toBe(0);
    for (const page of pages) {
      expect(await page.evaluate(() => window.refreshDemo.refresh())).toBe(false);
      await page.waitForSelector('body[data-state="signed-out"]');
    }
    expect(await refreshCookie(context)).toBeUndefined();
    await context.close();
  });

  it('a reload restores the session with one cookie refresh, no login', async () => {
    const { context, pages, user } = await profile();
    const page = pages[0]!;
    const posts: string[] = [];
    page.on('request', (request) => {
      if (request.method() === 'POST') posts.push(new URL(request.url()).pathname);
    });
    await page.reload();
    await signedIn(page, user.email);
    await page.waitForSelector('#sessions tr');
    expect(posts).toEqual(['/auth/token']);
    if (process.env.DEMO_SCREENSHOT) await page.screenshot({ path: process.env.DEMO_SCREENSHOT });
    await context.close();
  });

  it('a first visit sends no refresh and shows no error; #tour starts the tour, and a reload after it restores, not registers again', async () => {
    const context = await browser.newContext();
    try {
      context.setDefaultTimeout(10_000);
      const posts: string[] = [];
      context.on('request', (request) => {
        if (request.method() === 'POST') posts.push(new URL(request.url()).pathname);
      });
      const page = await context.newPage();
      await page.goto(origin);
      await page.waitForSelector('body[data-state="signed-out"]');
      expect(posts).toEqual([]);
      expect(await page.locator('#log li.err').count()).toBe(0);

      // The same page: only the address changes to #page.
      await page.goto(`${origin}/#tour`);
      await page.waitForSelector('body[data-state="signed-in"]');
      await page.waitForSelector('#sessions tr');
      expect(new URL(page.url()).hash).toBe('');
      posts.length = 0;
      await page.reload();
      await page.waitForSelector('body[data-state="signed-in"]');
      await page.waitForSelector('#sessions tr');
      expect(posts).toEqual(['/auth/token']);
      expect(await page.locator('#log li.err').count()).toBe(0);
    } finally {
      await context.close();
    }
  });

  it('the page refreshes by itself before the access token expires', async () => {
    const shortLived = await startApp({
      env: { ACCESS_TOKEN_TTL: '2s' },
      overrides: { clientModule: client.file },
    });
    const server = await listen((req, res) => shortLived.app(req, res));
    const context = await browser.newContext();
    try {
      context.setDefaultTimeout(10_000);
      const { email } = await signUp(shortLived.app);
      const page = await context.newPage();
      const refreshedAt: number[] = [];
      page.on('request', (request) => {
        if (request.url().endsWith('/auth/token')) refreshedAt.push(Date.now());
      });
      await page.goto(`http://localhost:${portOf(server)}`);
      await page.waitForSelector('body[data-state="signed-out"]');
      await page.fill('#email', email);
      await page.fill('#password', PASSWORD);
      const loggedInAt = Date.now();
      await page.click('#login');
      await signedIn(page, email);
      refreshedAt.length = 0; // only what follows the login counts
      await page.waitForTimeout(2_500);
      expect(refreshedAt.length).toBeGreaterThanOrEqual(1);
      expect(refreshedAt[0]! - loggedInAt).toBeLessThan(2_000);
      expect(await page.evaluate(() => window.refreshDemo.me())).toBe(true);
    } finally {
      await context.close();
      await close(server);
      await shortLived.close();
    }
  });

  it('log out clears the cookie, and every tab shows it', async () => {
    const { context, pages } = await profile(2);
    expect(await refreshCookie(context)).toBeDefined();
    await pages[0]!.click('#logout');
    for (const page of pages) await page.waitForSelector('body[data-state="signed-out"]');
    expect(await refreshCookie(context)).toBeUndefined();
    await pages[1]!.reload();
    await pages[1]!.waitForSelector('body[data-state="signed-out"]');
    await context.close();
  });

  it('revokes another session from the list, logs out everywhere, and changes the password', async () => {
    const { context, pages, user } = await profile();
    const page = pages[0]!;
    // A second device: its own profile, the same user.
    const device = await browser.newContext();
    device.setDefaultTimeout(10_000);
    const phone = await device.newPage();
    await phone.goto(origin);
    await phone.waitForSelector('body[data-state="signed-out"]');
    await phone.fill('#email', user.email);
    await phone.fill('#password', PASSWORD);
    await phone.click('#login');
    await signedIn(phone, user.email);

    await page.click('#reload-sessions');
    await page.waitForFunction(() => document.querySelectorAll('#sessions tr').length === 2);
    await page.click('#sessions tr:not(.current) button.revoke');
    await page.waitForFunction(() => document.querySelectorAll('#sessions tr').length === 1);
    expect(await phone.evaluate(() => window.refreshDemo.refresh())).toBe(false);
    await phone.waitForSelector('body[data-state="signed-out"]');
    expect(await rawRefresh(page)).toBe(200);

    await page.click('#logout-all');
    await page.waitForSelector('body[data-state="signed-out"]');
    // Dead at once by version; the worker's revoke-all job then marks the records.
    expect(
      await waitFor(() => liveSessions(user.id), {
        what: "the worker's revoke-all job to revoke the records",
        until: (live) => live === 0,
      }),
    ).toBe(0);
    expect(await refreshCookie(context)).toBeUndefined();

    await page.fill('#email', user.email);
    await page.fill('#password', PASSWORD);
    await page.click('#login');
    await signedIn(page, user.email);
    await page.fill('#current-password', PASSWORD);
    await page.fill('#new-password', 'a brand new passphrase');
    await page.click('#change-password');
    await page.waitForSelector('body[data-state="signed-out"]');
    await page.reload();
    await page.waitForSelector('body[data-state="signed-out"]');
    const old = await fetch(`${origin}/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: user.email, password: PASSWORD }),
    });
    expect(old.status).toBe(401);
    await device.close();
    await context.close();
  });

  describe.each([
    ['cross-site', (port: number) => `http://127.0.0.1:${port}`],
    ['same-site, other origin', (port: number) => `http://localhost:${port}`],
  ])('an attacker page (%s)', (_kind, attackerOrigin) => {
    it('changes nothing with form POSTs and fetches to /auth/token and /auth/logout; the victim still refreshes', async () => {
      const { context, pages, user } = await profile();
      const victim = pages[0]!;
      const before = (await refreshCookie(context))!.value;
      const evil = await context.newPage();
      const base = attackerOrigin(portOf(attacker));

      for (const route of ['/auth/logout', '/auth/token']) {
        for (const junk of [true, false]) {
          await evil.goto(`${base}/form?route=${route}&junk=${junk ? 1 : 0}`);
          await Promise.all([
            evil.waitForResponse((response) => response.url().endsWith(route)),
            evil.click('button'),
          ]);
          await evil.waitForLoadState();
          expect((await refreshCookie(context))?.value).toBe(before);
        }
      }

      await evil.goto(`${base}/`);
      const fetched = await evil.evaluate(async (target) => {
        const outcomes: string[] = [];
        for (const route of ['/auth/logout', '/auth/token']) {
          for (const body of ['refresh_token=junk', 'grant_type=refresh_token']) {
            // A simple request: sent, but its answer is opaque and SameSite keeps cross-site cookies off.
            await fetch(target + route, {
              method: 'POST',
              mode: 'no-cors',
              credentials: 'include',
              headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
              body,
            }).then(
              (response) => outcomes.push(`no-cors ${route}: ${response.type}`),
              () => outcomes.push(`no-cors ${route}: refused`),
            );
          }
          // With the CSRF header: a CORS preflight the app does not grant, so never sent.
          await fetch(target + route, {
            method: 'POST',
            credentials: 'include',
            headers: { 'X-Refresh-CSRF': '1', 'X-Token-Transport': 'cookie' },
          }).then(
            (response) => outcomes.push(`cors ${route}: ${response.status}`),
            () => outcomes.push(`cors ${route}: refused`),
          );
        }
        return outcomes;
      }, origin);
      // helmet's Cross-Origin-Resource-Policy makes Chromium refuse to hand even an opaque answer
      // back; the requests were sent all the same (counted below).
      expect(fetched).toEqual([
        expect.stringMatching(/^no-cors \/auth\/logout: (opaque|refused)$/),
        expect.stringMatching(/^no-cors \/auth\/logout: (opaque|refused)$/),
        'cors /auth/logout: refused',
        expect.stringMatching(/^no-cors \/auth\/token: (opaque|refused)$/),
        expect.stringMatching(/^no-cors \/auth\/token: (opaque|refused)$/),
        'cors /auth/token: refused',
      ]);
      // 4 form POSTs and 4 no-cors fetches reached the app; the 2 with the CSRF header never did.
      expect(foreignPosts.filter((line) => line.startsWith(base))).toHaveLength(8);

      expect((await refreshCookie(context))?.value).toBe(before);
      expect(await liveSessions(user.id)).toBe(1);
      expect(await rawRefresh(victim)).toBe(200);
      await victim.reload();
      await signedIn(victim, user.email);
      await context.close();
    });
  });
});
