/**
 * Token format 2 against format 3, in one process and one run (`npm run bench:tokens`): the CPU
 * the app tier spends on the token per refresh, the whole in-process refresh, and the size of a
 * stored record. No server needed.
 *
 * - Token work on the hot path. Format 2 (a copy of its codec, below: it is no longer in src/):
 *   parse, check the tag, `encodeNext` (the next token computed from the presented one) and the
 *   two SHA-256s. Format 3 (src/domain/token-codec.ts): parse, check the tag, `mint` (32 random
 *   bytes, the tag, the AES-256-GCM seal, the hash) and the presented token's SHA-256.
 * - Token work on the grace path: format 2 recomputed the current token from the salt; format 3
 *   unseals it.
 * - A whole refresh of the current token through `RotationService` on the in-memory adapters
 *   (format 3, measured), and format 2 estimated from it: the same refresh minus format 3's token
 *   work plus format 2's. What differs between the formats is only that token work.
 * - Record size: BSON bytes of a session record as the Mongoose adapter stores it, before and
 *   after, fresh (no superseded entry) and after 16 rotations (a full ring).
 *
 * Rounds interleave the two formats (order reversed every other round), each a fixed number of
 * operations timed by `process.cpuUsage()`; medians with min–max over the rounds.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mongo } from 'mongoose';
import { v7 as uuidv7 } from 'uuid';
import {
  InlineTokenJobs,
  MemoryRefreshTokenRepository,
  MemoryVersionStore,
} from 'refresh-rotation/memory';
import { hashToken, TokenCodec } from '../src/domain/token-codec';
import { RotationService } from 'refresh-rotation';
import { ACCESS_SECRET, fmt, fmtSpread, REFRESH_SECRET, spread, table } from './lib';

const ROUNDS = process.argv.includes('--full') ? 15 : 7;
const OPS = 20_000;
const REFRESHES = 5_000;

/* ----- Format 2, as it was (src/domain/token-codec.ts before format 3), hot-path parts only. ----- */

const F2_TAG_LABEL = Buffer.from('refresh-rotation/refresh-token-tag/v2\0', 'utf8');
const F2_ANCHOR_LABEL = Buffer.from('refresh-rotation/session-anchor/v2\0', 'utf8');
const F2_TOKEN = /^rt_[A-Za-z0-9_-]{94}$/;
const secret = Buffer.from(REFRESH_SECRET);

function f2Tag(sessionId: string, generation: number, anchor: Buffer): Buffer {
  const counter = Buffer.alloc(4);
  counter.writeUInt32BE(generation, 0);
  return createHmac('sha256', secret)
    .update(F2_TAG_LABEL)
    .update(Buffer.from(sessionId, 'hex'))
    .update(counter)
    .update(anchor)
    .digest()
    .subarray(0, 16);
}

function f2Assemble(sessionId: string, generation: number, anchor: Buffer, keyId: number): string {
  const body = Buffer.alloc(70);
  body.writeUInt8(2, 0);
  body.writeUInt8(keyId, 1);
  body.write(sessionId, 2, 16, 'hex');
  body.writeUInt32BE(generation, 18);
  f2Tag(sessionId, generation, anchor).copy(body, 22);
  anchor.copy(body, 38);
  return `rt_${body.toString('base64url')}`;
}

function f2AnchorOf(salt: string): Buffer {
  return createHash('sha256').update(F2_ANCHOR_LABEL).update(Buffer.from(salt, 'hex')).digest();
}

function f2Parse(token: string) {
  if (!F2_TOKEN.test(token)) throw new Error('malformed');
  const text = token.slice(3);
  const body = Buffer.from(text, 'base64url');
  if (body.length !== 70 || body.toString('base64url') !== text) throw new Error('malformed');
  if (body.readUInt8(0) !== 2) throw new Error('format');
  return {
    keyId: body.readUInt8(1),
    sessionId: body.subarray(2, 18).toString('hex'),
    generation: body.readUInt32BE(18),
    tag: Buffer.from(body.subarray(22, 38)),
    anchor: Buffer.from(body.subarray(38)),
  };
}

/** What format 2's hot path did with the token: parse, tag, encodeNext, two hashes. */
function format2HotPath(token: string, keyId: number): string {
  const parsed = f2Parse(token);
  if (!timingSafeEqual(f2Tag(parsed.sessionId, parsed.generation, parsed.anchor), parsed.tag))
    throw new Error('forged');
  void hashToken(token);
  const next = f2Assemble(parsed.sessionId, parsed.generation + 1, parsed.anchor, keyId);
  void hashToken(next);
  return next;
}

/* ----- Format 3: the code in src/. ----- */

const codec = new TokenCodec([REFRESH_SECRET]);

/** What format 3's hot path does with the token: parse, tag, mint (nonce, tag, seal, hash), one hash. */
function format3HotPath(token: string): string {
  const parsed = codec.parse(token);
  if (!codec.hasValidTag(parsed)) throw new Error('forged');
  void hashToken(token);
  return codec.mint(parsed.sessionId, parsed.generation + 1).token;
}

/** CPU microseconds per call of `work`, over `count` calls. */
function cpuPerCall(count: number, work: (index: number) => void): number {
  const started = process.cpuUsage();
  for (let index = 0; index < count; index += 1) work(index);
  const used = process.cpuUsage(started);
  return (used.user + used.system) / count;
}

async function cpuPerRefresh(service: RotationService, count: number): Promise<number> {
  let token = (await service.issue({ userId: 'bench' })).refreshToken;
  const started = process.cpuUsage();
  for (let index = 0; index < count; index += 1)
    token = (await service.refresh(token)).refreshToken;
  const used = process.cpuUsage(started);
  return (used.user + used.system) / count;
}

function inMemoryService(): RotationService {
  const repository = new MemoryRefreshTokenRepository();
  return new RotationService({
    repository,
    versions: new MemoryVersionStore(),
    jobs: new InlineTokenJobs(repository),
    revocationCache: { ttl: '10m' },
    accessToken: { algorithm: 'HS256', secret: ACCESS_SECRET },
    refreshToken: {
      secrets: [REFRESH_SECRET],
      reuseGrace: '10s',
      absoluteTtl: '3650d',
      idleTtl: '3650d',
    },
  });
}

/** BSON bytes of a record as the Mongoose adapter stores it, with `superseded` entries of its format. */
function recordBytes(format: 2 | 3, supersededEntries: number): number {
  const now = new Date();
  const common = {
    _id: randomBytes(16).toString('hex'),
    id: uuidv7(),
    userId: 'user-0123456789',
    generation: supersededEntries,
    keyId: codec.currentKeyId,
    tokenHash: randomBytes(32).toString('hex'),
    tokenVersion: 0,
    globalVersionAtIssuance: 0,
    createdAt: now,
    rotatedAt: supersededEntries > 0 ? now : null,
    lastUsedAt: now,
    expiresAt: now,
    absoluteExpiresAt: now,
    revokedAt: null,
    revokedReason: null,
    client: { userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0', ip: '203.0.113.7' },
  };
  const superseded = Array.from({ length: supersededEntries }, (_, generation) =>
    format === 2
      ? { generation, at: now }
      : { generation, at: now, tokenHash: randomBytes(32).toString('hex') },
  );
  const specific =
    format === 2
      ? { salt: randomBytes(32).toString('hex') }
      : { sealed: codec.mint(common._id, supersededEntries).sealed };
  return mongo.BSON.calculateObjectSize({ ...common, ...specific, superseded });
}

async function main(): Promise<void> {
  const keyId = codec.currentKeyId;
  const sessionId = randomBytes(16).toString('hex');
  const salt = randomBytes(32).toString('hex');
  const f2Token = f2Assemble(sessionId, 7, f2AnchorOf(salt), keyId);
  const f3Token = codec.mint(sessionId, 7).token;
  const f3Record = { sessionId, generation: 7, keyId, sealed: codec.mint(sessionId, 7).sealed };

  const hot = { 2: [] as number[], 3: [] as number[] };
  const grace = { 2: [] as number[], 3: [] as number[] };
  const refresh: number[] = [];
  // Warm-up: JIT, the crypto bindings, the service's caches.
  format2HotPath(f2Token, keyId);
  format3HotPath(f3Token);
  await cpuPerRefresh(inMemoryService(), 500);

  for (let round = 0; round < ROUNDS; round += 1) {
    const order: (2 | 3)[] = round % 2 === 0 ? [2, 3] : [3, 2];
    for (const format of order) {
      hot[format].push(
        format === 2
          ? cpuPerCall(OPS, () => format2HotPath(f2Token, keyId))
          : cpuPerCall(OPS, () => format3HotPath(f3Token)),
      );
      grace[format].push(
        format === 2
          ? cpuPerCall(OPS, () => f2Assemble(sessionId, 7, f2AnchorOf(salt), keyId))
          : cpuPerCall(OPS, () => codec.unsealCurrent(f3Record)),
      );
    }
    refresh.push(await cpuPerRefresh(inMemoryService(), REFRESHES));
  }

  const hot2 = spread(hot[2]);
  const hot3 = spread(hot[3]);
  const refresh3 = spread(refresh);
  // Per round: the measured refresh, minus format 3's token work, plus format 2's.
  const refresh2 = spread(refresh.map((cpu, index) => cpu - hot[3][index]! + hot[2][index]!));
  const ratio = spread(refresh.map((cpu, index) => cpu / (cpu - hot[3][index]! + hot[2][index]!)));
  const out = [
    `token format 2 vs 3: ${ROUNDS} interleaved rounds, ${fmt(OPS)} token operations and ${fmt(REFRESHES)} refreshes per round, CPU µs per call (median, min–max); Node ${process.version}`,
    table(
      'CPU per refresh, app tier',
      ['measure', 'format 2', 'format 3', '3 − 2 (µs)'],
      [
        [
          'token work, hot path',
          fmtSpread(hot2, 1),
          fmtSpread(hot3, 1),
          fmt(hot3.median - hot2.median, 1),
        ],
        [
          'token work, grace path (current token again)',
          fmtSpread(spread(grace[2]), 1),
          fmtSpread(spread(grace[3]), 1),
          fmt(spread(grace[3]).median - spread(grace[2]).median, 1),
        ],
        [
          'whole refresh, RotationService on memory adapters',
          `${fmtSpread(refresh2, 1)} (estimated)`,
          fmtSpread(refresh3, 1),
          fmt(refresh3.median - refresh2.median, 1),
        ],
      ],
    ),
    `\nwhole refresh, format 3 ÷ format 2: ${fmtSpread(ratio, 3)}`,
    table(
      'Stored record (BSON bytes, Mongoose adapter shape)',
      ['record', 'format 2', 'format 3', 'ratio'],
      [0, 1, 16].map((entries) => {
        const before = recordBytes(2, entries);
        const after = recordBytes(3, entries);
        return [
          entries === 0 ? 'at login' : `${entries} superseded entr${entries === 1 ? 'y' : 'ies'}`,
          fmt(before),
          fmt(after),
          fmt(after / before, 2),
        ];
      }),
    ),
  ];
  console.log(out.join('\n'));
}

void main();
