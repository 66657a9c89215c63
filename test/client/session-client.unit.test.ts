/**
 * refresh-rotation/client's decisions on doubles of the browser (a clock with timers, a scripted
 * fetch, storage, the wake-up signal): what signs out, what keeps the session, when it retries.
 * Tabs, locks and a real network are test/browser/session-client.test.ts.
 */
import { createSessionClient, type ClientEnvironment } from 'refresh-rotation/client';
import { parseRetryAfter, retryDelay } from '../../src/client/backoff';

type Answer = Response | Error;

/** A browser where time moves only when the test says, and fetch answers from a script. */
class FakeBrowser {
  now = 1_000_000;
  readonly sent: { url: string; authorization: string | null }[] = [];
  readonly store = new Map<string, string>();
  private readonly answers: Answer[] = [];
  private timers: { at: number; callback: () => void; id: number }[] = [];
  private nextId = 1;
  private wake: (() => void) | undefined;

  answer(...answers: Answer[]): void {
    this.answers.push(...answers);
  }

  environment(): Partial<ClientEnvironment> {
    return {
      now: () => this.now,
      random: () => 0.5,
      setTimeout: (callback, ms) => {
        const id = this.nextId++;
        this.timers.push({ at: this.now + ms, callback, id });
        return id;
      },
      clearTimeout: (id) => {
        this.timers = this.timers.filter((timer) => timer.id !== id);
      },
      timeout: () => new AbortController().signal,
      locks: undefined,
      openChannel: () => undefined,
      storage: {
        getItem: (key) => this.store.get(key) ?? null,
        setItem: (key, value) => void this.store.set(key, value),
        removeItem: (key) => void this.store.delete(key),
      },
      onWake: (callback) => {
        this.wake = callback;
        return () => (this.wake = undefined);
      },
      fetch: (input, init) => {
        this.sent.push({
          url: String(input),
          authorization: new Headers(init?.headers).get('Authorization'),
        });
        const next = this.answers.shift();
        if (!next) throw new Error(`no answer scripted for ${String(input)}`);
        return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
      },
    };
  }

  /** Moves the clock by `ms`, running each timer that falls due (and what it awaits). */
  async advance(ms: number): Promise<void> {
    const until = this.now + ms;
    for (;;) {
      const due = this.timers.filter((timer) => timer.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((timer) => timer !== due);
      this.now = due.at;
      due.callback();
      await settle();
    }
    this.now = until;
    await settle();
  }

  async comeOnline(): Promise<void> {
    this.wake?.();
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i += 1) await Promise.resolve();
}

function tokenAnswer(token: string, expiresIn = 60): Response {
  return Response.json({ access_token: token, token_type: 'Bearer', expires_in: expiresIn });
}

function errorAnswer(status: number, error: string, headers: Record<string, string> = {}) {
  return Response.json({ error }, { status, headers });
}

const HINT = 'refresh-rotation:signed-in';

describe('createSessionClient', () => {
  it('sends no refresh on a first visit (no signed-in hint): signed out at once', async () => {
    const browser = new FakeBrowser();
    const client = createSessionClient({ environment: browser.environment() });
    expect(await client.ready).toBe('signed-out');
    expect(browser.sent).toEqual([]);
    client.close();
  });

  it('restores with one refresh, then refreshes ahead of expiry by itself', async () => {
    const browser = new FakeBrowser();
    browser.store.set(HINT, '1');
    browser.answer(tokenAnswer('first'), tokenAnswer('second'));
    const client = createSessionClient({ environment: browser.environment() });
    expect(await client.ready).toBe('signed-in');
    expect(await client.accessToken()).toBe('first');
    // 60 s token: a fifth early (12 s) plus half of a tenth at random 0.5 (3 s).
    await browser.advance(44_000);
    expect(browser.sent).toHaveLength(1);
    await browser.advance(1_100);
    expect(browser.sent.map((request) => request.url)).toEqual(['/auth/token', '/auth/token']);
    expect(await client.accessToken()).toBe('second');
    client.close();
  });

  it('signs out on invalid_grant and forgets the hint', async () => {
    const browser = new FakeBrowser();
    browser.store.set(HINT, '1');
    browser.answer(errorAnswer(400, 'invalid_grant'));
    const changes: string[] = [];
    const client = createSessionClient({
      environment: browser.environment(),
      onChange: (change) => changes.push(`${change.state}:${change.reason}`),
    });
    expect(await client.ready).toBe('signed-out');
    expect(changes).toEqual(['signed-out:invalid-grant']);
    expect(browser.store.has(HINT)).toBe(false);
    expect(await client.accessToken()).toBeNull();
    client.close();
  });

  it('keeps the session through a 503, and waits out Retry-After, the API calls included', async () => {
    const browser = new FakeBrowser();
    browser.store.set(HINT, '1');
    browser.answer(tokenAnswer('first', 10));
    const client = createSessionClient({ environment: browser.environment() });
    await client.ready;
    browser.answer(errorAnswer(503, 'temporarily_unavailable', { 'Retry-After': '30' }));
    await browser.advance(9_000); // the refresh ahead of expiry
    expect(browser.sent).toHaveLength(2);
    expect(client.state).toBe('signed-in');
    // Expired meanwhile; the server asked for 30 s: the API call uses the token held, no refresh.
    await browser.advance(5_000);
    browser.answer(errorAnswer(401, 'invalid_token'));
    expect((await client.fetch('/me')).status).toBe(401);
    expect(browser.sent.map((request) => request.url)).toEqual([
      '/auth/token',
      '/auth/token',
      '/me',
    ]);
    browser.answer(tokenAnswer('second'));
    await browser.advance(25_000);
    expect(browser.sent).toHaveLength(4);
    expect(await client.accessToken()).toBe('second');
    client.close();
  });

  it('keeps the session offline and refreshes when the browser is back online', async () => {
    const browser = new FakeBrowser();
    browser.store.set(HINT, '1');
    browser.answer(tokenAnswer('first', 10));
    const client = createSessionClient({ environment: browser.environment() });
    await client.ready;
    browser.answer(new TypeError('Failed to fetch'));
    // The refresh ahead of expiry at 7.5 s fails; its retry would come 0.75 s later.
    await browser.advance(8_000);
    expect(browser.sent).toHaveLength(2);
    expect(client.state).toBe('signed-in');
    browser.answer(tokenAnswer('second'));
    await browser.comeOnline();
    expect(browser.sent).toHaveLength(3);
    expect(await client.accessToken()).toBe('second');
    client.close();
  });

  it('retries an API call once after a 401, with the refreshed token', async () => {
    const browser = new FakeBrowser();
    browser.store.set(HINT, '1');
    browser.answer(tokenAnswer('first'));
    const client = createSessionClient({ environment: browser.environment() });
    await client.ready;
    browser.answer(
      errorAnswer(401, 'invalid_token'),
      tokenAnswer('second'),
      Response.json({ id: 'u' }),
    );
    expect((await client.fetch('/me')).status).toBe(200);
    expect(browser.sent.slice(1)).toEqual([
      { url: '/me', authorization: 'Bearer first' },
      { url: '/auth/token', authorization: null },
      { url: '/me', authorization: 'Bearer second' },
    ]);
    client.close();
  });
});

describe('backoff', () => {
  it('doubles from 1 s up to the cap, never sooner than Retry-After', () => {
    expect([1, 2, 3, 10].map((failures) => retryDelay(failures, 4_000, 1))).toEqual([
      1_000, 2_000, 4_000, 4_000,
    ]);
    expect(retryDelay(1, 60_000, 0)).toBe(500);
    expect(retryDelay(1, 60_000, 0, 7_000)).toBe(7_000);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-12-04T02:00:00Z');
    expect(parseRetryAfter('5', now)).toBe(5_000);
    expect(parseRetryAfter('Fri, 04 Dec 2026 02:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});
