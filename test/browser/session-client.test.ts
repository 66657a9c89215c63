/**
 * refresh-rotation/client on the demo page in a real Chromium (Debian's, driven by playwright-core),
 * with access tokens living 3 s, so tabs refresh by themselves several times in a test: four tabs
 * over several lifetimes, the browser offline for longer than a lifetime, `/auth/token` answering
 * 503 with `Retry-After`, a session revoked from elsewhere, and a frozen tab holding the refresh
 * lock (issue 25). Each test prints its figures: token requests and their answers, sign-outs per
 * tab, and the `/me` answers the tabs got through the module's fetch.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { PASSWORD, logIn, signUp, startApp, type TestApp } from '../support/app-harness';
import { buildClientModule, type ClientModule } from '../support/client-module';
import { mongoUri, redisUrl } from '../support/services';
import { waitFor } from '../support/wait-for';

// What the functions passed to page.evaluate() see in the page (the project compiles without DOM types).
declare const window: {
  refreshDemo: {
    status(path: string): Promise<number>;
    state(): { state: string; refreshes: number; signOuts: number; changes: string[] };
  };
};
declare const navigator: {
  locks: { request(name: string, callback: () => Promise<unknown>): Promise<unknown> };
};

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const LIFETIME_MS = 3_000;
/** Longer than this, a `/me` call counts as hung (the module's lock wait is bounded at 3 s). */
const ME_TIMEOUT_MS = 8_000;
const LOCK = 'refresh-rotation:refresh';

jest.setTimeout(90_000);

/** Every POST /auth/token of a profile: when, and its status (0 when the network refused it). */
type TokenAnswer = { at: number; status: number };

function tally(values: readonly (number | string)[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[String(value)] = (counts[String(value)] ?? 0) + 1;
  return counts;
}

describe('refresh-rotation/client in Chromium, access tokens living 3 s', () => {
  let browser: Browser;
  let backend: TestApp;
  let server: Server;
  let origin: string;
  let client: ClientModule;
  const contexts: BrowserContext[] = [];

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
      env: { ACCESS_TOKEN_TTL: `${LIFETIME_MS / 1_000}s` },
      overrides: { clientModule: client.file },
    });
    server = await new Promise<Server>((resolve, reject) => {
      const listening = createServer((req, res) => backend.app(req, res));
      listening.once('error', reject);
      listening.listen(0, '127.0.0.1', () => resolve(listening));
    });
    // localhost: a secure context for Chromium, so the `Secure` refresh cookie works over http.
    origin = `http://localhost:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-dev-shm-usage'],
    });
  }, 60_000);

  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((context) => context.close()));
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => {
      if (!server) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
    });
    await backend?.close();
    client?.remove();
  });

  /* ----- helpers ----- */

  /** A fresh profile with `tabs` tabs of the page, signed in through the first one's form. */
  async function profile(tabs: number) {
    const user = await signUp(backend.app);
    const context = await browser.newContext();
    contexts.push(context);
    context.setDefaultTimeout(15_000);
    const tokens: TokenAnswer[] = [];
    context.on('requestfinished', (request) => {
      if (request.method() !== 'POST' || !request.url().endsWith('/auth/token')) return;
      void request.response().then((response) => {
        tokens.push({ at: Date.now(), status: response?.status() ?? 0 });
      });
    });
    context.on('requestfailed', (request) => {
      if (request.method() === 'POST' && request.url().endsWith('/auth/token'))
        tokens.push({ at: Date.now(), status: 0 });
    });
    const pages: Page[] = [];
    for (let tab = 0; tab < tabs; tab += 1) {
      const page = await context.newPage();
      await page.goto(origin);
      if (tab === 0) {
        await page.waitForSelector('body[data-state="signed-out"]');
        await page.fill('#email', user.email);
        await page.fill('#password', PASSWORD);
        await page.click('#login');
      }
      await page.waitForSelector('body[data-state="signed-in"]');
      pages.push(page);
    }
    return { context, pages, tokens, user };
  }

  /** `/me` through the module's fetch in every tab, at once; 'hung' when one takes too long. */
  function meEverywhere(pages: readonly Page[]): Promise<(number | string)[]> {
    return Promise.all(
      pages.map((page) =>
        page.evaluate(
          (timeoutMs) =>
            Promise.race([
              window.refreshDemo.status('/me'),
              new Promise<string>((resolve) => setTimeout(() => resolve('hung'), timeoutMs)),
            ]),
          ME_TIMEOUT_MS,
        ),
      ),
    );
  }

  /** Calls `/me` in every tab once a second for `ms`; every answer. */
  async function sampleMe(pages: readonly Page[], ms: number): Promise<(number | string)[]> {
    const answers: (number | string)[] = [];
    const until = Date.now() + ms;
    while (Date.now() < until) {
      const round = Date.now();
      answers.push(...(await meEverywhere(pages)));
      await new Promise((resolve) =>
        setTimeout(resolve, Math.max(0, 1_000 - (Date.now() - round))),
      );
    }
    return answers;
  }

  function states(pages: readonly Page[]) {
    return Promise.all(pages.map((page) => page.evaluate(() => window.refreshDemo.state())));
  }

  function report(scenario: string, figures: Record<string, unknown>): void {
    console.log(`${scenario}: ${JSON.stringify(figures)}`);
  }

  /* ----- tests ----- */

  it('four tabs over four lifetimes: they refresh by themselves, one at a time; no sign-out, every /me 200', async () => {
    const { pages, tokens } = await profile(4);
    tokens.length = 0; // what the tabs do by themselves from here
    const me = await sampleMe(pages, 4 * LIFETIME_MS);
    const after = await states(pages);
    report('four tabs', {
      tokenAnswers: tally(tokens.map((t) => t.status)),
      signOuts: after.map((s) => s.signOuts),
      me: tally(me),
    });
    expect(after.map((s) => [s.state, s.signOuts])).toEqual(pages.map(() => ['signed-in', 0]));
    expect(tally(me)).toEqual({ 200: me.length });
    expect(me.length).toBeGreaterThanOrEqual(4 * 10);
    // About one refresh per lifetime for the whole profile, not one per tab.
    expect(tokens.length).toBeGreaterThanOrEqual(3);
    expect(tokens.length).toBeLessThanOrEqual(2 * 4 + 1);
    expect(tokens.every((t) => t.status === 200)).toBe(true);
  });

  it('offline for longer than a lifetime, then back: still signed in, refreshes again, /me 200', async () => {
    const { context, pages, tokens } = await profile(3);
    await context.setOffline(true);
    const offlineAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 1.5 * LIFETIME_MS));
    const whileOffline = await states(pages);
    expect(whileOffline.map((s) => s.state)).toEqual(pages.map(() => 'signed-in'));
    await context.setOffline(false);
    const onlineAt = Date.now();
    const refreshed = await waitFor(() => tokens.find((t) => t.at > onlineAt && t.status === 200), {
      what: 'a refresh after the browser is back online',
      timeoutMs: 10_000,
    });
    const me = await meEverywhere(pages);
    const after = await states(pages);
    report('offline 4.5 s', {
      tokenAnswersOffline: tally(
        tokens.filter((t) => t.at >= offlineAt && t.at < onlineAt).map((t) => t.status),
      ),
      firstRefreshAfterOnlineMs: refreshed.at - onlineAt,
      tokenAnswersAfter: tally(tokens.filter((t) => t.at >= onlineAt).map((t) => t.status)),
      signOuts: after.map((s) => s.signOuts),
      me: tally(me),
    });
    expect(after.map((s) => [s.state, s.signOuts])).toEqual(pages.map(() => ['signed-in', 0]));
    expect(me).toEqual(pages.map(() => 200));
  });

  it('/auth/token answering 503 with Retry-After for two lifetimes: still signed in, retries spaced as told', async () => {
    const { pages, tokens } = await profile(2);
    const retryAfterS = 2;
    const attempts: number[][] = pages.map(() => []);
    await Promise.all(
      pages.map((page, tab) =>
        page.route('**/auth/token', (route) => {
          attempts[tab]!.push(Date.now());
          return route.fulfill({
            status: 503,
            headers: { 'Retry-After': String(retryAfterS), 'Cache-Control': 'no-store' },
            contentType: 'application/json',
            body: JSON.stringify({ error: 'temporarily_unavailable' }),
          });
        }),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 2 * LIFETIME_MS));
    const during = await states(pages);
    expect(during.map((s) => s.state)).toEqual(pages.map(() => 'signed-in'));
    await Promise.all(pages.map((page) => page.unrouteAll()));
    const healedAt = Date.now();
    await waitFor(() => tokens.find((t) => t.at > healedAt && t.status === 200), {
      what: 'a refresh once /auth/token answers again',
      timeoutMs: 10_000,
    });
    const me = await meEverywhere(pages);
    const after = await states(pages);
    const gaps = attempts.map((times) => times.slice(1).map((at, i) => at - times[i]!));
    report('503 with Retry-After: 2 for 6 s', {
      attemptsPerTab: attempts.map((times) => times.length),
      gapsMs: gaps,
      signOuts: after.map((s) => s.signOuts),
      me: tally(me),
    });
    expect(attempts.flat().length).toBeGreaterThanOrEqual(2);
    // Never sooner than Retry-After (a little slack for the two clocks' reading of the same instants).
    for (const gap of gaps.flat()) expect(gap).toBeGreaterThanOrEqual(retryAfterS * 1_000 - 100);
    expect(after.map((s) => [s.state, s.signOuts])).toEqual(pages.map(() => ['signed-in', 0]));
    expect(me).toEqual(pages.map(() => 200));
  });

  it('a session revoked elsewhere (a password change from another client): every tab signs out', async () => {
    const { pages, tokens, user } = await profile(3);
    const other = await logIn(backend.app, user.email);
    const changed = await fetch(`${origin}/auth/password`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Authorization: `Bearer ${other.access_token}`,
      },
      body: JSON.stringify({ currentPassword: PASSWORD, newPassword: 'a brand new passphrase' }),
    });
    expect(changed.status).toBe(204);
    const revokedAt = Date.now();
    await Promise.all(
      pages.map((page) =>
        page.waitForSelector('body[data-state="signed-out"]', { timeout: 2 * LIFETIME_MS + 5_000 }),
      ),
    );
    const signedOutMs = Date.now() - revokedAt;
    const after = await states(pages);
    report('revoked elsewhere', {
      tokenAnswersAfterRevocation: tally(
        tokens.filter((t) => t.at >= revokedAt).map((t) => t.status),
      ),
      everyTabSignedOutWithinMs: signedOutMs,
      signOuts: after.map((s) => s.signOuts),
    });
    expect(after.map((s) => s.state)).toEqual(pages.map(() => 'signed-out'));
    expect(tokens.filter((t) => t.at >= revokedAt && t.status === 200)).toEqual([]);
  });

  it('a tab frozen while it holds the refresh lock does not stop the others refreshing', async () => {
    const { context, pages, tokens } = await profile(3);
    const [frozen, ...others] = pages as [Page, ...Page[]];
    // The lock taken and never let go, then the tab frozen: as Chrome freezes a background tab
    // in the middle of its refresh.
    await frozen.evaluate((lock) => {
      void navigator.locks.request(lock, () => new Promise(() => undefined));
    }, LOCK);
    const cdp = await context.newCDPSession(frozen);
    try {
      await cdp.send('Page.setWebLifecycleState', { state: 'frozen' });
      const frozenAt = Date.now();
      const me = await sampleMe(others, 3 * LIFETIME_MS);
      const after = await states(others);
      const refreshes = tokens.filter((t) => t.at >= frozenAt);
      report('frozen lock holder', {
        tokenAnswersWhileFrozen: tally(refreshes.map((t) => t.status)),
        signOuts: after.map((s) => s.signOuts),
        me: tally(me),
      });
      expect(tally(me)).toEqual({ 200: me.length });
      expect(refreshes.filter((t) => t.status === 200).length).toBeGreaterThanOrEqual(2);
      expect(after.map((s) => [s.state, s.signOuts])).toEqual(others.map(() => ['signed-in', 0]));
    } finally {
      await cdp.send('Page.setWebLifecycleState', { state: 'active' });
      await cdp.detach();
    }
  });
});
