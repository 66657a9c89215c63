/**
 * The origin's refresh, re-implemented faithfully: each stored token is a bcrypt hash (cost 12) and
 * a refresh finds its record by scanning every active record with `bcrypt.compare`
 * (`findByTokenVerification`, the origin's O(n) lookup, through our Mongoose adapter on the same
 * server), then rotates by deleting the record and inserting a new one with a fresh cost-12 hash.
 *
 * Seeding n real cost-12 hashes would take n × ~0.6 s here, so the records the scan passes over
 * hold well-formed cost-12 bcrypt strings with random salt and checksum: `bcrypt.compare` does the
 * full cost-12 work on each and answers false, exactly like a non-matching real hash. The record
 * searched for holds a real hash of its token, at a uniformly random position in scan order.
 *
 * Each refresh has a time cap; past it the scan stops and its cost is extrapolated as
 * (time per compare measured in that scan) × (position of the record + 1). Reported as such.
 * Ours is measured at the same sizes in the same process: `RotationService.refresh` on the
 * Mongoose adapter, sequential calls.
 */
import { randomBytes, randomInt } from 'node:crypto';
import bcrypt from 'bcrypt';
import mongoose from 'mongoose';
import { v7 as uuidv7 } from 'uuid';
import { MongooseRefreshTokenRepository, MongooseVersionStore } from 'refresh-rotation/mongoose';
import { RotationService } from 'refresh-rotation';
import type { BenchMongo } from './postgres';
import {
  ACCESS_SECRET,
  REFRESH_SECRET,
  fmt,
  fmtSpread,
  initialTokens,
  seedSessions,
  spread,
  table,
  type Spread,
} from './lib';

const COST = 12;
const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function fakeBcryptHash(): string {
  const chars = (n: number) =>
    Array.from({ length: n }, () => BCRYPT_ALPHABET[randomInt(64)]).join('');
  return `$2b$${COST}$${chars(22)}${chars(31)}`;
}

class CapReached extends Error {}

export interface OriginRow {
  tokens: number;
  originMs: Spread;
  extrapolated: number;
  measured: number;
  compareMs: Spread;
  oursMs: Spread;
  ratio: number;
}

export interface OriginResult {
  rows: OriginRow[];
  capMs: number;
  table: string;
}

export async function runOrigin(
  mongo: BenchMongo,
  full: boolean,
  log: (m: string) => void,
): Promise<OriginResult> {
  const capMs = full ? 20_000 : 4_000;
  const plan = full
    ? [
        { tokens: 10, refreshes: 5 },
        { tokens: 100, refreshes: 3 },
        { tokens: 1_000, refreshes: 2 },
      ]
    : [
        { tokens: 10, refreshes: 2 },
        { tokens: 100, refreshes: 1 },
        { tokens: 1_000, refreshes: 1 },
      ];
  const connection = await mongoose.createConnection(`${mongo.url}/bench_origin`).asPromise();
  const rows: OriginRow[] = [];
  try {
    await connection.db!.dropDatabase();
    const origin = new MongooseRefreshTokenRepository(connection, {
      collectionName: 'origin_tokens',
    });
    await origin.ensureIndexes();
    const originRaw = connection.db!.collection<{ _id: string; tokenHash: string }>(
      'origin_tokens',
    );
    const ours = new MongooseRefreshTokenRepository(connection);
    await ours.ensureIndexes();
    const service = new RotationService({
      repository: ours,
      versions: new MongooseVersionStore(connection),
      accessToken: { secret: ACCESS_SECRET },
      refreshToken: { secrets: [REFRESH_SECRET] },
    });
    for (const { tokens, refreshes } of plan) {
      await originRaw.deleteMany({});
      await connection.db!.collection('refresh_tokens').deleteMany({});
      const now = Date.now();
      const ids: string[] = [];
      const docs = Array.from({ length: tokens }, (_v, i) => {
        const id = uuidv7();
        ids.push(id);
        return {
          _id: id,
          userId: `user-${i}`,
          sessionId: randomBytes(16).toString('hex'),
          generation: 0,
          keyId: 0,
          tokenHash: fakeBcryptHash(),
          salt: randomBytes(32).toString('hex'),
          tokenVersion: 0,
          globalVersionAtIssuance: 0,
          createdAt: new Date(now),
          rotatedAt: null,
          lastUsedAt: null,
          expiresAt: new Date(now + 30 * 86_400_000),
          absoluteExpiresAt: new Date(now + 90 * 86_400_000),
          revokedAt: null,
          revokedReason: null,
        };
      });
      await originRaw.insertMany(docs);
      const times: number[] = [];
      const perCompare: number[] = [];
      let extrapolated = 0;
      for (let r = 0; r < refreshes; r += 1) {
        const position = randomInt(tokens);
        const token = randomBytes(48).toString('base64url');
        await originRaw.updateOne(
          { _id: ids[position] },
          { $set: { tokenHash: await bcrypt.hash(token, COST) } },
        );
        let compares = 0;
        const started = performance.now();
        let found = null;
        try {
          found = await origin.findByTokenVerification(token, async (presented, hash) => {
            if (performance.now() - started > capMs) throw new CapReached();
            compares += 1;
            return bcrypt.compare(presented, hash);
          });
        } catch (error) {
          if (
            !(error instanceof CapReached) &&
            !((error as { cause?: unknown }).cause instanceof CapReached)
          )
            throw error;
        }
        const scanMs = performance.now() - started;
        const compareMs = scanMs / Math.max(1, compares);
        perCompare.push(compareMs);
        // Rotation as the origin did it: delete, then insert a new record with a fresh cost-12 hash.
        const rotateStarted = performance.now();
        const nextHash = await bcrypt.hash(randomBytes(48).toString('base64url'), COST);
        if (found) {
          await originRaw.deleteOne({ _id: found.id });
          await originRaw.insertOne({ ...docs[position]!, _id: uuidv7(), tokenHash: nextHash });
          ids[position] = (await originRaw.findOne({ tokenHash: nextHash }))!._id;
        } else {
          extrapolated += 1;
          await originRaw.updateOne(
            { _id: ids[position] },
            { $set: { tokenHash: fakeBcryptHash() } },
          );
        }
        const rotateMs = performance.now() - rotateStarted;
        const total = found ? scanMs + rotateMs : compareMs * (position + 1) + rotateMs;
        times.push(total);
        log(
          `origin n=${tokens}: record at ${position + 1}, ${compares} compares in ${fmt(scanMs)} ms${found ? '' : ' (capped)'}, ${fmt(compareMs)} ms/compare → ${fmt(total)} ms per refresh`,
        );
      }
      const sessions = await seedSessions(connection, tokens, { keep: tokens });
      mongo.addLookupIndexes?.('bench_origin', 'refresh_tokens');
      const pool = initialTokens(sessions);
      const oursMs: number[] = [];
      for (let i = 0; i < Math.min(60, pool.length * 3); i += 1) {
        const index = i % pool.length;
        const started = performance.now();
        const answer = await service.refresh(pool[index]);
        oursMs.push(performance.now() - started);
        pool[index] = answer.refreshToken;
      }
      const originSpread = spread(times);
      const oursSpread = spread(oursMs.slice(5));
      rows.push({
        tokens,
        originMs: originSpread,
        extrapolated,
        measured: refreshes - extrapolated,
        compareMs: spread(perCompare),
        oursMs: oursSpread,
        ratio: originSpread.median / oursSpread.median,
      });
    }
  } finally {
    await connection.db!.dropDatabase().catch(() => undefined);
    await connection.close();
  }
  return {
    rows,
    capMs,
    table: table(
      `The origin's lookup (bcrypt cost 12 per token, O(n) bcrypt.compare scan, delete+insert rotation) vs ours (RotationService.refresh, Mongoose adapter), sequential, same server; cap ${fmt(capMs / 1000)} s per origin refresh, extrapolated past it`,
      [
        'stored tokens',
        'origin ms/refresh',
        'measured / extrapolated',
        'ms per bcrypt.compare',
        'ours ms/refresh',
        'origin/ours',
      ],
      rows.map((r) => [
        fmt(r.tokens),
        fmtSpread(r.originMs),
        `${r.measured} / ${r.extrapolated}`,
        fmtSpread(r.compareMs),
        fmtSpread(r.oursMs, 2),
        fmt(r.ratio),
      ]),
    ),
  };
}
