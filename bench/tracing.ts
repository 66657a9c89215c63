/**
 * `npm run bench:tracing`: what tracing costs a refresh, in one run. Two processes of the example
 * app (demo/server.ts, on the in-memory adapters), one started with `OTEL_EXPORTER_OTLP_ENDPOINT`
 * (the SDK as the demo and the bin start it: http, express, mongodb and ioredis instrumented, every
 * span sampled, batches exported over OTLP/HTTP to a sink in this process), one without; chains of
 * refreshes over HTTP alternate between them (order reversed every other round). Each process's
 * CPU time comes from /proc (bench/lib.ts `cpuMeter`), throughput is refreshes per second of wall
 * time with `--chains` in flight. The database is left out: tracing adds spans, not commands (the
 * mongodb instrumentation's own cost comes on top with a real store).
 *
 * Flags: --refreshes=2000 (per batch), --chains=8, --rounds=5.
 */
import { createServer } from 'node:http';
import { freePort } from '../test/support/servers';
import {
  ACCESS_SECRET,
  REFRESH_SECRET,
  cpuMeter,
  fmt,
  fmtSpread,
  integerFlag,
  spawnTs,
  spread,
  table,
  waitHttp,
  type Child,
} from './lib';

const REFRESHES = integerFlag('refreshes', 2000);
const CHAINS = integerFlag('chains', 8);
const ROUNDS = integerFlag('rounds', 5);
const MODES = ['off', 'on'] as const;
type Mode = (typeof MODES)[number];

interface Batch {
  cpuMicrosPerRefresh: number;
  perSecond: number;
}

function appEnv(port: number, mode: Mode, sinkPort: number): Record<string, string> {
  return {
    PORT: String(port),
    NODE_ENV: 'development',
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'warn',
    ACCESS_TOKEN_SECRET: ACCESS_SECRET,
    REFRESH_TOKEN_SECRETS: REFRESH_SECRET,
    RATE_LIMIT_TOKEN_PER_MINUTE: '1000000',
    RATE_LIMIT_LOGIN_PER_MINUTE: '1000000',
    RATE_LIMIT_ACCOUNT_PER_HOUR: '1000000',
    ...(mode === 'on'
      ? {
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${sinkPort}`,
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
          OTEL_TRACES_SAMPLER: 'always_on',
          OTEL_METRICS_EXPORTER: 'none',
          OTEL_LOGS_EXPORTER: 'none',
        }
      : {}),
  };
}

async function main(): Promise<void> {
  let exports = 0;
  const sink = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      exports += 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  const sinkPort = await freePort();
  await new Promise<void>((resolve) => sink.listen(sinkPort, '127.0.0.1', resolve));
  const children: Child[] = [];
  try {
    const origins = {} as Record<Mode, string>;
    const pids = {} as Record<Mode, number>;
    for (const mode of MODES) {
      const port = await freePort();
      const child = spawnTs('demo/server.ts', appEnv(port, mode, sinkPort));
      children.push(child);
      origins[mode] = `http://127.0.0.1:${port}`;
      pids[mode] = child.pid;
      await waitHttp(`${origins[mode]}/healthz`, child);
    }
    const meter = cpuMeter(pids);
    const cpuMicros = (mode: Mode) => meter()[mode]! * 1e6;
    const post = (mode: Mode, path: string, body: Record<string, string>) =>
      fetch(`${origins[mode]}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const refresh = async (mode: Mode, token: string): Promise<string> => {
      const response = await post(mode, '/auth/token', { refresh_token: token });
      const body = (await response.json()) as { refresh_token?: string };
      if (!response.ok || !body.refresh_token)
        throw new Error(`refresh (${mode}) answered ${response.status} ${JSON.stringify(body)}`);
      return body.refresh_token;
    };
    const chains = { off: [] as string[], on: [] as string[] };
    for (const mode of MODES)
      for (let i = 0; i < CHAINS; i += 1) {
        const account = {
          email: `bench-${i}@example.com`,
          password: 'correct horse battery staple',
        };
        await post(mode, '/auth/register', account);
        const login = await post(mode, '/auth/login', account);
        const body = (await login.json()) as { refresh_token?: string };
        if (!login.ok || !body.refresh_token) throw new Error(`login (${mode}): ${login.status}`);
        chains[mode].push(body.refresh_token);
      }

    const batch = async (mode: Mode): Promise<Batch> => {
      const perChain = Math.ceil(REFRESHES / CHAINS);
      const before = cpuMicros(mode);
      const started = performance.now();
      await Promise.all(
        chains[mode].map(async (_token, chain) => {
          for (let i = 0; i < perChain; i += 1)
            chains[mode][chain] = await refresh(mode, chains[mode][chain]!);
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      const done = perChain * CHAINS;
      return { cpuMicrosPerRefresh: (cpuMicros(mode) - before) / done, perSecond: done / seconds };
    };

    await batch('off'); // warm-up: JIT, connections
    await batch('on');
    const results = { off: [] as Batch[], on: [] as Batch[] };
    for (let round = 0; round < ROUNDS; round += 1) {
      const order: Mode[] = round % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
      for (const mode of order) results[mode].push(await batch(mode));
    }
    const cpuOf = (b: Batch) => b.cpuMicrosPerRefresh;
    const rateOf = (b: Batch) => b.perSecond;
    const of = (mode: Mode, pick: (b: Batch) => number) => spread(results[mode].map(pick));
    const ratio = (pick: (b: Batch) => number) =>
      spread(results.on.map((b, i) => pick(b) / pick(results.off[i]!)));
    process.stdout.write(
      `${table(
        `The example app with the OpenTelemetry SDK on (100 % sampled, OTLP/HTTP) and off (${ROUNDS} rounds of ${REFRESHES} refreshes, ${CHAINS} in flight, in-memory adapters; median, min-max)`,
        ['', 'app CPU µs / refresh', 'refreshes / s'],
        [
          ['off', fmtSpread(of('off', cpuOf)), fmtSpread(of('off', rateOf))],
          ['on', fmtSpread(of('on', cpuOf)), fmtSpread(of('on', rateOf))],
          ['on ÷ off (per round)', fmtSpread(ratio(cpuOf), 2), fmtSpread(ratio(rateOf), 2)],
        ],
      )}\n`,
    );
    process.stdout.write(
      `tracing adds ${fmt(of('on', cpuOf).median - of('off', cpuOf).median)} µs of app CPU per refresh; the sink received ${exports} OTLP exports\n`,
    );
  } finally {
    await Promise.all(children.map((child) => child.stop()));
    await new Promise((resolve) => sink.close(resolve));
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});
