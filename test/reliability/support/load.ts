/**
 * The reliability tests' tools around an app started by `startApp()` (test/support/app-harness.ts):
 * sign-ups over plain HTTP, a steady refresh load, raw bytes on a socket, and the figure lines that
 * docs/reliability.md quotes. RELIABILITY_SOAK=1 makes every scenario longer and bigger.
 */
import { connect as netConnect } from 'node:net';
import { PASSWORD } from '../../support/app-harness';
import type { HttpAnswer, HttpClient } from '../../support/http-client';
import { uniqueName } from '../../support/services';

/** RELIABILITY_SOAK=1 runs every scenario longer and bigger. */
export const SOAK = process.env.RELIABILITY_SOAK === '1';

/** `normal` in the regular run, `soak` under RELIABILITY_SOAK=1. */
export function scale(normal: number, soak: number): number {
  return SOAK ? soak : normal;
}

export interface SignedUp {
  id: string;
  email: string;
  accessToken: string;
  refreshToken: string;
}

function tokensOf(answer: HttpAnswer, what: string): { accessToken: string; refreshToken: string } {
  const access = answer.body?.access_token;
  const refresh = answer.body?.refresh_token;
  if (answer.status !== 200 || typeof access !== 'string' || typeof refresh !== 'string')
    throw new Error(`${what} answered ${answer.status}: ${answer.text}`);
  return { accessToken: access, refreshToken: refresh };
}

/** Register and log in a fresh user over HTTP. */
export async function signUp(
  http: HttpClient,
  email = `${uniqueName('user')}@example.com`,
): Promise<SignedUp> {
  const registered = await http.json('POST', '/auth/register', { email, password: PASSWORD });
  if (registered.status !== 202)
    throw new Error(`register answered ${registered.status}: ${registered.text}`);
  const tokens = await logIn(http, email);
  const claims = JSON.parse(
    Buffer.from(tokens.accessToken.split('.')[1] ?? '', 'base64url').toString('utf8'),
  );
  return { id: String(claims.sub), email, ...tokens };
}

/** One more session for an existing user. */
export async function logIn(
  http: HttpClient,
  email: string,
): Promise<{ accessToken: string; refreshToken: string }> {
  return tokensOf(await http.json('POST', '/auth/login', { email, password: PASSWORD }), 'login');
}

/** Counts of answers by status. */
export function tally(statuses: number[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

/** Print a figure line that docs/reliability.md quotes (one JSON object per line, greppable). */
export function report(name: string, figures: Record<string, unknown>): void {
  process.stdout.write(`RELIABILITY ${name} ${JSON.stringify({ soak: SOAK, ...figures })}\n`);
}

/**
 * Send raw bytes to the app on a fresh connection and collect every status code it answers
 * before closing (a smuggled second request shows as a second status). `timedOut` when the
 * server neither answered nor closed within `timeoutMs`.
 */
export function rawExchange(
  base: string,
  bytes: Buffer,
  timeoutMs = 5_000,
): Promise<{ statuses: number[]; timedOut: boolean; text: string }> {
  const url = new URL(base);
  return new Promise((resolve) => {
    const socket = netConnect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, timeoutMs);
    socket.on('connect', () => socket.end(bytes));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const statuses = [...text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
      resolve({ statuses, timedOut, text });
    });
  });
}

export interface LoadSample {
  /** ms since the load started */
  at: number;
  /** 0 when no HTTP answer came (connection error or client timeout) */
  status: number;
  ms: number;
  error?: string;
}

export interface RefreshLoad {
  readonly samples: LoadSample[];
  /** Each loop's current refresh token. */
  readonly tokens: string[];
  /** Stop the loops; resolves once each has finished its request in flight. */
  stop(): Promise<void>;
}

/**
 * A steady refresh load: one loop per token, each refreshing its own session over and over
 * (keeping the token it was answered), with `pauseMs` between requests. The loops end at `stop()`
 * or when the client is closed (so a test that fails before `stop()` still lets jest exit).
 */
export function refreshLoad(http: HttpClient, tokens: string[], pauseMs = 20): RefreshLoad {
  const samples: LoadSample[] = [];
  const current = [...tokens];
  const started = Date.now();
  let running = true;
  const loop = async (index: number) => {
    while (running && !http.closed) {
      const at = Date.now() - started;
      try {
        const answer = await http.send({
          method: 'POST',
          path: '/auth/token',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ refresh_token: current[index] }),
          timeoutMs: 15_000,
        });
        samples.push({
          at,
          status: answer.status,
          ms: answer.ms,
          ...(answer.status === 200 ? {} : { error: answer.text.slice(0, 200) }),
        });
        if (answer.status === 200) current[index] = String(answer.body?.refresh_token);
      } catch (error) {
        samples.push({ at, status: 0, ms: Date.now() - started - at, error: String(error) });
      }
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  };
  const loops = current.map((_, index) => loop(index));
  return {
    samples,
    tokens: current,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}
