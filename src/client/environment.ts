/**
 * What the client needs from the browser, as small structural types: the module compiles without
 * the DOM library, and tests hand it doubles (a clock, a fetch, a lock manager, a channel).
 */

/** The part of `navigator.locks` (Web Locks) the client uses. */
export interface LockManagerLike {
  request<T>(
    name: string,
    options: { signal?: AbortSignal; steal?: boolean },
    callback: () => Promise<T>,
  ): Promise<T>;
}

/** The part of a `BroadcastChannel` the client uses. */
export interface ChannelLike {
  postMessage(message: unknown): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  close(): void;
}

/** The part of `localStorage` the client uses (for the signed-in hint only, never a token). */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** Where the client gets time, network, coordination and wake-up signals. */
export interface ClientEnvironment {
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
  /** Milliseconds since the epoch. */
  now(): number;
  /** In [0, 1): jitter and backoff spread. */
  random(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** A signal that aborts after `ms` (`AbortSignal.timeout`). */
  timeout(ms: number): AbortSignal;
  /** Web Locks, or undefined where the browser has none (then each tab refreshes on its own). */
  locks: LockManagerLike | undefined;
  /** A channel shared by the tabs of this origin, or undefined. */
  openChannel(name: string): ChannelLike | undefined;
  storage: StorageLike | undefined;
  /** Calls `callback` when the browser comes back online or the page becomes visible; returns a remover. */
  onWake(callback: () => void): () => void;
}

interface BrowserGlobals {
  navigator?: { locks?: LockManagerLike };
  BroadcastChannel?: new (name: string) => ChannelLike;
  localStorage?: StorageLike;
  document?: { visibilityState?: string };
  addEventListener?(type: string, listener: () => void): void;
  removeEventListener?(type: string, listener: () => void): void;
}

function storageOf(scope: BrowserGlobals): StorageLike | undefined {
  try {
    return scope.localStorage;
  } catch {
    return undefined; // storage disabled: reading localStorage throws
  }
}

/** The real browser (or whatever `globalThis` offers), resolved when a client is created. */
export function browserEnvironment(): ClientEnvironment {
  const scope = globalThis as unknown as BrowserGlobals;
  return {
    fetch: (input, init) => globalThis.fetch(input, init),
    now: () => Date.now(),
    random: () => Math.random(),
    setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
    clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
    timeout: (ms) => AbortSignal.timeout(ms),
    locks: scope.navigator?.locks,
    openChannel: (name) =>
      typeof scope.BroadcastChannel === 'function' ? new scope.BroadcastChannel(name) : undefined,
    storage: storageOf(scope),
    onWake(callback) {
      const visible = () => {
        if (scope.document?.visibilityState !== 'hidden') callback();
      };
      scope.addEventListener?.('online', callback);
      scope.addEventListener?.('visibilitychange', visible);
      return () => {
        scope.removeEventListener?.('online', callback);
        scope.removeEventListener?.('visibilitychange', visible);
      };
    },
  };
}
