/**
 * `npm run bench:dpop`: what one DPoP proof verification costs the app, per call, in one process
 * (no HTTP, no database). For ES256 and EdDSA proofs: the whole verifier (`createDPoPVerifier`:
 * header checks, jose's `jwtVerify` with the embedded key, the thumbprint, the claims and one
 * `MemoryDPoPReplayCache` claim), and its parts: jose's `jwtVerify` alone, one bare signature
 * verify on `node:crypto` with a key imported once (the floor), and the replay claim alone. Rounds
 * are interleaved and the median is reported, because the machine is shared.
 *
 * Flags: --proofs=1000 (per round and measure), --rounds=5.
 */
import { createPublicKey, randomBytes, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { EmbeddedJWK, jwtVerify } from 'jose';
import { createDPoPVerifier, type DPoPAlgorithm } from 'refresh-rotation/express';
import { MemoryDPoPReplayCache } from 'refresh-rotation/memory';
import { makeProof, proofKey, type ProofKey } from '../test/support/dpop-proofs';
import { fmt, fmtSpread, integerFlag, spread, table } from './lib';

const URL = 'https://api.example.com/auth/token';

const PROOFS = integerFlag('proofs', 1000);
const ROUNDS = integerFlag('rounds', 5);

interface Measure {
  name: string;
  /** Runs `proofs.length` operations; the harness times it. */
  run(proofs: readonly string[]): Promise<void>;
}

function nodeKey(key: ProofKey): KeyObject {
  return createPublicKey({ key: key.publicJwk as never, format: 'jwk' });
}

function measures(key: ProofKey): Measure[] {
  const replayCache = new MemoryDPoPReplayCache({ maxEntries: 10_000_000 });
  const verifier = createDPoPVerifier({ replayCache });
  const publicKey = nodeKey(key);
  const algorithm = key.alg === 'ES256' ? 'sha256' : null;
  return [
    {
      name: 'verifier (jose + checks + memory claim)',
      async run(proofs) {
        for (const proof of proofs) await verifier.verify({ proof, method: 'POST', url: URL });
      },
    },
    {
      name: 'jose jwtVerify(EmbeddedJWK) alone',
      async run(proofs) {
        for (const proof of proofs) await jwtVerify(proof, EmbeddedJWK, { algorithms: [key.alg] });
      },
    },
    {
      name: 'node:crypto verify, key imported once (floor)',
      async run(proofs) {
        for (const proof of proofs) {
          const [header, payload, signature] = proof.split('.') as [string, string, string];
          const ok = cryptoVerify(
            algorithm,
            Buffer.from(`${header}.${payload}`),
            { key: publicKey, dsaEncoding: 'ieee-p1363' },
            Buffer.from(signature, 'base64url'),
          );
          if (!ok) throw new Error('floor: signature did not verify');
        }
      },
    },
    {
      name: 'MemoryDPoPReplayCache.claim alone',
      async run(proofs) {
        for (let i = 0; i < proofs.length; i += 1)
          await replayCache.claim(randomBytes(32).toString('base64url'), 121_000);
      },
    },
  ];
}

async function timeUs(
  measure: Measure,
  proofs: readonly string[],
): Promise<{ us: number; cpuUs: number }> {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  await measure.run(proofs);
  const elapsed = Number(process.hrtime.bigint() - start) / 1000;
  const used = process.cpuUsage(cpu);
  return { us: elapsed / proofs.length, cpuUs: (used.user + used.system) / proofs.length };
}

async function benchAlgorithm(alg: DPoPAlgorithm): Promise<string[][]> {
  const key = await proofKey(alg);
  const list = measures(key);
  const wall = list.map(() => [] as number[]);
  const cpu = list.map(() => [] as number[]);
  // Warm-up: jose's first import, JIT.
  const warm = await Promise.all(Array.from({ length: 200 }, () => makeProof(key, URL)));
  for (const measure of list) await measure.run(warm);
  for (let round = 0; round < ROUNDS; round += 1) {
    // Fresh proofs every round and measure: each has its own jti, as real traffic does.
    for (const [i, measure] of list.entries()) {
      const proofs = await Promise.all(Array.from({ length: PROOFS }, () => makeProof(key, URL)));
      const { us, cpuUs } = await timeUs(measure, proofs);
      wall[i]!.push(us);
      cpu[i]!.push(cpuUs);
    }
  }
  return list.map((measure, i) => [
    alg,
    measure.name,
    fmtSpread(spread(wall[i]!), 1),
    fmt(spread(cpu[i]!).median, 1),
    fmt(1e6 / spread(wall[i]!).median, 0),
  ]);
}

async function main(): Promise<void> {
  const rows = [...(await benchAlgorithm('ES256')), ...(await benchAlgorithm('EdDSA'))];
  process.stdout.write(
    `${table(
      `DPoP proof verification, ${PROOFS} proofs × ${ROUNDS} rounds, one at a time (Node ${process.version})`,
      ['alg', 'measure', 'µs per call, median (min–max)', 'CPU µs per call', 'calls/s'],
      rows,
    )}\n`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
