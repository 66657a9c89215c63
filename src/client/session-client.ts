import { parseRetryAfter, retryDelay } from './backoff';
import { browserEnvironment, type ChannelLike, type ClientEnvironment } from './environment';

/**
 * - `restoring`: this browser may hold a session (the hint says so) and no refresh has answered yet,
 *   or every one so far failed for a reason that keeps the session (offline, 5xx, 429).
 * - `signed-in`: the client holds an access token (possibly expired while the network is down).
 * - `signed-out`: no session: never signed in, signed out, or the server refused the refresh cookie.
 */
export type SessionState = 'restoring' | 'signed-in' | 'signed-out';

/** Why the state changed, as handed to listeners. */
export type SessionChangeReason =
  | 'restored'
  | 'signed-in'
  | 'refreshed'
  | 'other-tab'
  | 'first-visit'
  | 'signed-out'
  | 'invalid-grant';

/** What a listener receives on every change of state or token. */
export interface SessionChange {
  readonly state: SessionState;
  readonly reason: SessionChangeReason;
}

/** A listener of {@link SessionClient.subscribe} and `onChange`. */
export type SessionListener = (change: SessionChange) => void;

/** Options of {@link createSessionClient}. */
export interface SessionClientOptions {
  /** Where the router is mounted, same origin or absolute. Default `/auth`. */
  baseUrl?: string;
  /** The router's CSRF header (`cookie.csrfHeader`). Default `X-Refresh-CSRF`. */
  csrfHeader?: string;
  /** The router's transport header (`cookie.transportHeader`). Default `X-Token-Transport`. */
  transportHeader?: string;
  /** `credentials` of the cookie requests: `include` when the API is on another origin. Default `same-origin`. */
  credentials?: 'same-origin' | 'include';
  /**
   * Milliseconds before expiry to refresh. Default a fifth of the token's lifetime, at most 30 s.
   * Each refresh also comes up to a tenth of the lifetime earlier at random (jitter).
   */
  refreshAhead?: number;
  /** Longest wait for another tab's refresh before stealing the lock. Default 3000 ms. */
  lockTimeout?: number;
  /** A refresh request that takes longer is aborted and retried. Default 10000 ms. */
  requestTimeout?: number;
  /** Cap of the exponential backoff between failed refreshes. Default 60000 ms. */
  maxBackoff?: number;
  /** Prefix of the lock, channel and hint names: one per session of an origin. Default `refresh-rotation`. */
  name?: string;
  /** Called on every change (like {@link SessionClient.subscribe}). */
  onChange?: SessionListener;
  /** Replaces parts of the browser (tests; a page that logs its requests wraps `fetch`). Default the real one. */
  environment?: Partial<ClientEnvironment>;
}

/** The client returned by {@link createSessionClient}. */
export interface SessionClient {
  /** Settles when the load-time restore has had its first answer; resolves to the state then. */
  readonly ready: Promise<SessionState>;
  /** The current state. */
  readonly state: SessionState;
  /** When the access token held expires (milliseconds since the epoch); 0 when none is held. */
  readonly expiresAt: number;
  /**
   * A usable access token, refreshing first when it is due; null when signed out (or when the
   * refresh cannot reach the server: the session is kept and retried).
   */
  accessToken(): Promise<string | null>;
  /** `fetch` with `Authorization: Bearer`; a 401 refreshes once and retries once. */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
  /**
   * Sends the app's login request (any URL) asking for the cookie transport and adopts the token
   * response when it is 2xx. Returns the response (its body still readable).
   */
  signIn(input: string | URL, init?: RequestInit): Promise<Response>;
  /** Refreshes now (one tab at a time); resolves to whether the client is signed in afterwards. */
  refresh(): Promise<boolean>;
  /** `POST {baseUrl}/logout`, then signs out every tab (even when the request fails). */
  signOut(): Promise<void>;
  /** `POST {baseUrl}/logout-all` (every session of the user), then signs out every tab. */
  signOutEverywhere(): Promise<void>;
  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: SessionListener): () => void;
  /** Stops timers, listeners and the channel. The client is unusable afterwards. */
  close(): void;
}

interface TokenBody {
  access_token: string;
  expires_in: number;
}

type ChannelMessage =
  { type: 'token'; accessToken: string; expiresAt: number } | { type: 'signed-out' };

/** What one refresh request came to. */
type Outcome = 'refreshed' | 'dead' | 'transient';

const DEFAULTS = {
  baseUrl: '/auth',
  csrfHeader: 'X-Refresh-CSRF',
  transportHeader: 'X-Token-Transport',
  credentials: 'same-origin',
  lockTimeout: 3_000,
  requestTimeout: 10_000,
  maxBackoff: 60_000,
  name: 'refresh-rotation',
} as const;

function isTokenBody(value: unknown): value is TokenBody {
  const body = value as Partial<TokenBody> | null;
  return typeof body?.access_token === 'string' && typeof body.expires_in === 'number';
}

function isChannelMessage(value: unknown): value is ChannelMessage {
  const message = value as Partial<ChannelMessage> | null;
  return message?.type === 'token' || message?.type === 'signed-out';
}

async function readJson(response: Response): Promise<unknown> {
  try {
    return (await response.json()) as unknown;
  } catch {
    return null;
  }
}

function isAbort(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name;
  return name === 'AbortError' || name === 'TimeoutError';
}

/**
 * The browser half of the cookie transport: restores the session on load with one refresh (none
 * on a first visit: a signed-in hint in `localStorage`, never a token, says whether to try),
 * refreshes ahead of expiry with jitter, one tab at a time (Web Locks, the result shared over a
 * BroadcastChannel; a lock holder that is frozen or stalled is overtaken after `lockTimeout`),
 * keeps the session through offline spells, timeouts, 5xx and 429 (exponential backoff,
 * `Retry-After`, a retry when the browser is back online or the page visible) and signs out only
 * when the server refuses the cookie (`invalid_grant`) or another tab signs out. The access token
 * lives in memory only. Nothing runs until this is called.
 */
export function createSessionClient(options: SessionClientOptions = {}): SessionClient {
  const env: ClientEnvironment = { ...browserEnvironment(), ...options.environment };
  const config = { ...DEFAULTS, ...options };
  const base = config.baseUrl.replace(/\/+$/, '');
  const lockName = `${config.name}:refresh`;
  const hintKey = `${config.name}:signed-in`;
  const listeners = new Set<SessionListener>(options.onChange ? [options.onChange] : []);
  const channel: ChannelLike | undefined = env.openChannel(lockName);

  let state: SessionState = 'restoring';
  let token: string | null = null;
  let expiresAt = 0;
  /** Bumped by every token adopted, whoever fetched it: a waiter can tell one arrived. */
  let generation = 0;
  let failures = 0;
  let notBefore = 0;
  let timer: unknown;
  let inFlight: Promise<boolean> | null = null;
  let closed = false;

  function emit(reason: SessionChangeReason): void {
    for (const listener of [...listeners]) listener({ state, reason });
  }

  function setHint(signedIn: boolean): void {
    try {
      if (signedIn) env.storage?.setItem(hintKey, '1');
      else env.storage?.removeItem(hintKey);
    } catch {
      // Storage full or disabled: every load then tries the one refresh.
    }
  }

  function mayHaveSession(): boolean {
    try {
      return env.storage ? env.storage.getItem(hintKey) !== null : true;
    } catch {
      return true;
    }
  }

  function post(message: ChannelMessage): void {
    try {
      channel?.postMessage(message);
    } catch {
      // A closed channel: the other tabs learn at their next refresh.
    }
  }

  function wakeAt(at: number): void {
    env.clearTimeout(timer);
    if (closed || state === 'signed-out') return;
    timer = env.setTimeout(
      () => void refresh().catch(() => undefined),
      Math.max(0, at - env.now()),
    );
  }

  function lifetimeLead(lifetime: number): number {
    const ahead = options.refreshAhead ?? Math.min(30_000, lifetime / 5);
    return ahead + (lifetime / 10) * env.random();
  }

  function adopt(accessToken: string, expiry: number, reason: SessionChangeReason): void {
    token = accessToken;
    expiresAt = expiry;
    generation += 1;
    failures = 0;
    notBefore = 0;
    state = 'signed-in';
    setHint(true);
    wakeAt(expiry - lifetimeLead(expiry - env.now()));
    emit(reason);
  }

  function signedOut(reason: SessionChangeReason, broadcast: boolean): void {
    const changed = state !== 'signed-out';
    token = null;
    expiresAt = 0;
    state = 'signed-out';
    env.clearTimeout(timer);
    setHint(false);
    if (broadcast) post({ type: 'signed-out' });
    if (changed) emit(reason);
  }

  /** Why: a failed refresh must never end the schedule, or the tab stays "signed in" on a dead token. */
  function retryLater(retryAfterMs?: number): void {
    failures += 1;
    const delay = retryDelay(failures, config.maxBackoff, env.random(), retryAfterMs);
    if (retryAfterMs !== undefined) notBefore = env.now() + retryAfterMs;
    wakeAt(env.now() + delay);
  }

  function isDue(): boolean {
    return token === null || env.now() >= expiresAt - lifetimeLead(0) - 1_000;
  }

  async function requestRefresh(): Promise<Outcome> {
    let response: Response;
    try {
      response = await env.fetch(`${base}/token`, {
        method: 'POST',
        headers: {
          Accept: 'application/json',
          [config.csrfHeader]: '1',
          [config.transportHeader]: 'cookie',
        },
        credentials: config.credentials,
        signal: env.timeout(config.requestTimeout),
      });
    } catch {
      retryLater(); // offline, DNS, CORS, or our own timeout
      return 'transient';
    }
    const body = await readJson(response);
    if (response.ok && isTokenBody(body)) {
      const expiry = env.now() + body.expires_in * 1_000;
      adopt(body.access_token, expiry, state === 'signed-in' ? 'refreshed' : 'restored');
      post({ type: 'token', accessToken: body.access_token, expiresAt: expiry });
      return 'refreshed';
    }
    // 400 is the router's answer for a refused cookie (invalid_grant) or none at all: no session.
    if (response.status === 400 || response.status === 401) {
      signedOut('invalid-grant', true);
      return 'dead';
    }
    retryLater(parseRetryAfter(response.headers.get('Retry-After'), env.now()));
    return 'transient';
  }

  /** Inside the lock: a token another tab fetched while this one waited makes the refresh moot. */
  async function refreshUnlessDone(before: number): Promise<boolean> {
    if (generation !== before && !isDue()) return true;
    if (state === 'signed-out' && generation !== before) return false;
    return (await requestRefresh()) === 'refreshed';
  }

  async function coordinatedRefresh(): Promise<boolean> {
    const locks = env.locks;
    const before = generation;
    if (!locks) return refreshUnlessDone(before);
    let mine: Promise<boolean> | undefined;
    try {
      return await locks.request(
        lockName,
        { signal: env.timeout(config.lockTimeout) },
        () => (mine = refreshUnlessDone(before)),
      );
    } catch (error) {
      // Another tab stole the lock while this one refreshed: this refresh still answers for us.
      if (mine) return mine;
      if (!isAbort(error)) throw error;
      // Why steal is safe: the holder is frozen, discarded or stalled; if it wakes and sends its
      // refresh too, the server's reuse-grace window answers both with the current token.
      return locks.request(lockName, { steal: true }, () => refreshUnlessDone(before));
    }
  }

  function refresh(): Promise<boolean> {
    if (closed) return Promise.resolve(false);
    inFlight ??= coordinatedRefresh()
      .catch(() => {
        retryLater();
        return false;
      })
      .finally(() => {
        inFlight = null;
      });
    return inFlight;
  }

  function onWake(): void {
    if (state === 'signed-out' || !(failures > 0 || isDue())) return;
    if (env.now() < notBefore) wakeAt(notBefore);
    else void refresh();
  }

  function onMessage(data: unknown): void {
    if (closed || !isChannelMessage(data)) return;
    if (data.type === 'signed-out') signedOut('other-tab', false);
    else adopt(data.accessToken, data.expiresAt, 'other-tab');
  }

  /** The server asked for a pause (`Retry-After`): the API's calls wait for the scheduled retry too. */
  function mayRefreshNow(): boolean {
    return env.now() >= notBefore;
  }

  async function accessToken(): Promise<string | null> {
    if (state === 'signed-out') return null;
    if ((isDue() || state === 'restoring') && mayRefreshNow()) await (inFlight ?? refresh());
    return token;
  }

  function withBearer(init: RequestInit | undefined, bearer: string | null): RequestInit {
    const headers = new Headers(init?.headers);
    if (bearer !== null) headers.set('Authorization', `Bearer ${bearer}`);
    return { ...init, headers };
  }

  async function authorizedFetch(
    input: string | URL | Request,
    init?: RequestInit,
  ): Promise<Response> {
    const again = input instanceof Request ? input.clone() : input;
    const sent = await accessToken();
    const response = await env.fetch(input, withBearer(init, sent));
    if (response.status !== 401 || sent === null) return response;
    // Another tab may have refreshed already; otherwise one refresh, then one retry.
    if (token === sent && !(mayRefreshNow() && (await refresh()))) return response;
    return env.fetch(again, withBearer(init, token));
  }

  async function signIn(input: string | URL, init?: RequestInit): Promise<Response> {
    const headers = new Headers(init?.headers);
    headers.set(config.transportHeader, 'cookie');
    headers.set(config.csrfHeader, '1');
    if (!headers.has('Accept')) headers.set('Accept', 'application/json');
    const response = await env.fetch(input, {
      method: 'POST',
      credentials: config.credentials,
      ...init,
      headers,
    });
    const body = response.ok ? await readJson(response.clone()) : null;
    if (isTokenBody(body)) {
      const expiry = env.now() + body.expires_in * 1_000;
      adopt(body.access_token, expiry, 'signed-in');
      post({ type: 'token', accessToken: body.access_token, expiresAt: expiry });
    }
    return response;
  }

  async function signOut(): Promise<void> {
    try {
      await env.fetch(`${base}/logout`, {
        method: 'POST',
        headers: { [config.csrfHeader]: '1' },
        credentials: config.credentials,
        signal: env.timeout(config.requestTimeout),
      });
    } finally {
      signedOut('signed-out', true);
    }
  }

  async function signOutEverywhere(): Promise<void> {
    try {
      await authorizedFetch(`${base}/logout-all`, {
        method: 'POST',
        headers: { [config.csrfHeader]: '1' },
        credentials: config.credentials,
      });
    } finally {
      signedOut('signed-out', true);
    }
  }

  if (channel) channel.onmessage = (event) => onMessage(event.data);
  const stopWaking = env.onWake(onWake);

  const ready: Promise<SessionState> = mayHaveSession()
    ? refresh().then(() => state)
    : Promise.resolve().then(() => {
        if (state === 'restoring') signedOut('first-visit', false);
        return state;
      });

  return {
    ready,
    get state() {
      return state;
    },
    get expiresAt() {
      return expiresAt;
    },
    accessToken,
    fetch: authorizedFetch,
    signIn,
    refresh,
    signOut,
    signOutEverywhere,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      closed = true;
      env.clearTimeout(timer);
      stopWaking();
      if (channel) {
        channel.onmessage = null;
        channel.close();
      }
    },
  };
}
