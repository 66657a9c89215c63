/**
 * `npm run bench:dpop-refresh`: what DPoP adds to a refresh, end to end over HTTP, in one run. A
 * server process (bench/dpop-refresh-server.ts: the token router on the memory adapters, DPoP on)
 * answers chains of refreshes of bearer sessions and of sessions bound to an ES256 key; rounds
 * alternate the two (order reversed every other round) and the medians are compared. The server's
 * own CPU time per refresh comes from its `process.cpuUsage()`, so the client's work (signing
 * proofs, ahead of each timed batch) is not counted; throughput is refreshes per second of wall
 * time with `--chains` refreshes in flight. The database is left out on purpose: a bound refresh
 * is the same one command (the binding is in its filter; test/mongoose/command-count.test.ts), so
 * what differs is the proof's verification and its replay-cache claim.
 *
 * Flags: --refreshes=2000 (per batch), --chains=8, --rounds=5.
 */
import { freePort } from '../test/support/servers';
import { makeProof, proofKey } from '../test/support/dpop-proofs';
import { fmt, fmtSpread, integerFlag, spawnTs, spread, table, waitHttp } from './lib';

const REFRESHES = integerFlag('refreshes', 2000);
const CHAINS = integerFlag('chains', 8);
const ROUNDS = integerFlag('rounds', 5);

type Mode = 'bearer' | 'dpop';

interface Batch {
  cpuMicrosPerRefresh: number;
  perSecond: number;
}

async function main(): Promise<void> {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const server = spawnTs('bench/dpop-refresh-server.ts', { PORT: String(port) });
  try {
    await waitHttp(`${origin}/healthz`, server);
    const key = await proofKey('ES256');
    const cpu = async () =>
      ((await (await fetch(`${origin}/cpu`)).json()) as { micros: number }).micros;

    const login = async (mode: Mode): Promise<string> => {
      const headers: Record<string, string> =
        mode === 'dpop' ? { DPoP: await makeProof(key, `${origin}/login`) } : {};
      const response = await fetch(`${origin}/login`, { method: 'POST', headers });
      const body = (await response.json()) as { refresh_token?: string; token_type?: string };
      const expected = mode === 'dpop' ? 'DPoP' : 'Bearer';
      if (!response.ok || body.token_type !== expected || !body.refresh_token)
        throw new Error(`login (${mode}) answered ${response.status} ${JSON.stringify(body)}`);
      return body.refresh_token;
    };
    const chains: Record<Mode, string[]> = { bearer: [], dpop: [] };
    for (const mode of ['bearer', 'dpop'] as const)
      for (let i = 0; i < CHAINS; i += 1) chains[mode].push(await login(mode));

    const refresh = async (token: string, proof: string | undefined): Promise<string> => {
      const response = await fetch(`${origin}/auth/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          ...(proof === undefined ? {} : { DPoP: proof }),
        },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token }),
      });
      const body = (await response.json()) as { refresh_token?: string };
      if (!response.ok || !body.refresh_token)
        throw new Error(`refresh answered ${response.status} ${JSON.stringify(body)}`);
      return body.refresh_token;
    };

    const batch = async (mode: Mode): Promise<Batch> => {
      const perChain = Math.ceil(REFRESHES / CHAINS);
      // Signed before the clock starts: the client's cost is not the server's.
      const proofs =
        mode === 'dpop'
          ? await Promise.all(
              Array.from({ length: perChain * CHAINS }, () =>
                makeProof(key, `${origin}/auth/token`),
              ),
            )
          : [];
      const cpuBefore = await cpu();
      const started = performance.now();
      await Promise.all(
        chains[mode].map(async (_token, chain) => {
          for (let i = 0; i < perChain; i += 1) {
            const proof = mode === 'dpop' ? proofs[chain * perChain + i] : undefined;
            chains[mode][chain] = await refresh(chains[mode][chain]!, proof);
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      const cpuMicros = (await cpu()) - cpuBefore;
      const done = perChain * CHAINS;
      return { cpuMicrosPerRefresh: cpuMicros / done, perSecond: done / seconds };
    };

    await batch('bearer'); // warm-up: JIT, connection pool
    await batch('dpop');
    const results: Record<Mode, Batch[]> = { bearer: [], dpop: [] };
    for (let round = 0; round < ROUNDS; round += 1) {
      const order: Mode[] = round % 2 === 0 ? ['bearer', 'dpop'] : ['dpop', 'bearer'];
      for (const mode of order) results[mode].push(await batch(mode));
    }

    const cpuOf = (mode: Mode) => spread(results[mode].map((b) => b.cpuMicrosPerRefresh));
    const rateOf = (mode: Mode) => spread(results[mode].map((b) => b.perSecond));
    const cpuRatios = spread(
      results.dpop.map((b, i) => b.cpuMicrosPerRefresh / results.bearer[i]!.cpuMicrosPerRefresh),
    );
    const rateRatios = spread(
      results.dpop.map((b, i) => b.perSecond / results.bearer[i]!.perSecond),
    );
    process.stdout.write(
      `${table(
        `DPoP refresh vs bearer refresh over HTTP (${ROUNDS} rounds of ${REFRESHES}, ${CHAINS} in flight, memory adapters; median, min-max)`,
        ['', 'server CPU µs / refresh', 'refreshes / s'],
        [
          ['bearer', fmtSpread(cpuOf('bearer')), fmtSpread(rateOf('bearer'))],
          ['DPoP (ES256)', fmtSpread(cpuOf('dpop')), fmtSpread(rateOf('dpop'))],
          ['DPoP ÷ bearer (per round)', fmtSpread(cpuRatios, 2), fmtSpread(rateRatios, 2)],
        ],
      )}\n`,
    );
    process.stdout.write(
      `DPoP adds ${fmt(cpuOf('dpop').median - cpuOf('bearer').median)} µs of server CPU per refresh\n`,
    );
  } finally {
    await server.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});
