/**
 * The load generator, run in its own process (loopback): autocannon for a fixed time against a
 * refresh endpoint. In `rotate` mode each request presents the current token of a session taken
 * from a FIFO pool and puts the session back with the token the server answered, so every request
 * is a valid rotation whatever the order of answers. In the reject modes a fixed set of bad tokens
 * is cycled. In `bearer` mode a fixed set of access tokens is cycled as `GET` requests with
 * `Authorization: Bearer …` (the `authenticate` section). Reads a JSON config (path in argv[2]); writes a JSON result to `config.out`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import autocannon from 'autocannon';

interface LoadConfig {
  url: string;
  mode: 'rotate' | 'fixed' | 'bearer';
  /** rotate: current tokens of the pool (file of a JSON array); fixed: tokens cycled. */
  tokensFile: string;
  durationSec: number;
  connections: number;
  out: string;
}

export interface LoadResult {
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** rotate: the pool's tokens at the end (sessions whose answer failed are dropped). */
  tokens?: string[];
  dropped?: number;
  /** CPU seconds the load generator itself used during the run. */
  cpuSeconds: number;
}

async function main(): Promise<void> {
  const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as LoadConfig;
  const tokens = JSON.parse(readFileSync(config.tokensFile, 'utf8')) as string[];
  const pool = [...tokens];
  let head = 0;
  let cursor = 0;
  let dropped = 0;
  let ok = 0;
  const take = (): string => {
    if (config.mode !== 'rotate') return tokens[cursor++ % tokens.length]!;
    // FIFO without shifting an array of 100k entries.
    const token = pool[head];
    if (token === undefined) throw new Error('token pool ran dry: raise the pool size');
    head += 1;
    if (head > 50_000) {
      pool.splice(0, head);
      head = 0;
    }
    return token;
  };
  const cpuBefore = process.cpuUsage();
  const instance = autocannon({
    url: config.url,
    connections: config.connections,
    duration: config.durationSec,
    timeout: 10,
    requests: [
      {
        method: config.mode === 'bearer' ? 'GET' : 'POST',
        setupRequest: (request: Record<string, unknown>, context: { token?: string }) => {
          const token = take();
          context.token = token;
          if (config.mode === 'bearer')
            return { ...request, headers: { authorization: `Bearer ${token}` } };
          return {
            ...request,
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ refresh_token: token }),
          };
        },
        onResponse: (status: number, body: string, context: { token?: string }) => {
          if (status === 200) ok += 1;
          if (config.mode !== 'rotate') return;
          if (status === 200)
            pool.push((JSON.parse(body) as { refresh_token: string }).refresh_token);
          else dropped += 1;
          context.token = undefined;
        },
      },
    ],
  });
  const result = await instance;
  const cpu = process.cpuUsage(cpuBefore);
  const out: LoadResult = {
    requests: result.requests.total,
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    rps: result.requests.total / config.durationSec,
    // A run in which nothing completed has no latency (autocannon reports 0): NaN, left out of medians.
    p50: result.requests.total > 0 ? result.latency.p50 : NaN,
    p90: result.requests.total > 0 ? result.latency.p90 : NaN,
    p99: result.requests.total > 0 ? result.latency.p99 : NaN,
    max: result.requests.total > 0 ? result.latency.max : NaN,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
  if (config.mode === 'rotate') {
    // A request cut off by the end of the run may have rotated its session without us seeing the
    // answer: its session is dropped from the pool (counted), never reused with a stale token.
    out.tokens = pool.slice(head);
    out.dropped = dropped + (tokens.length - ok - out.tokens.length - dropped);
  }
  writeFileSync(config.out, JSON.stringify(out));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
