import { createHash, randomBytes } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import type {
  NewRefreshTokenRecord,
  RefreshTokenRecord,
  RotateInput,
} from '../../src/domain/refresh-token';
import { keyIdOf } from '../../src/domain/token-codec';
import { EPOCH } from './fake-clock';

const DAY = 86_400_000;

/** A random hex string of `bytes` bytes. */
export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** A token hash that is unique per call (hex SHA-256 of random bytes). */
export function aTokenHash(): string {
  return createHash('sha256').update(randomBytes(16)).digest('hex');
}

/**
 * A new, live session record at generation 0, created at `EPOCH`, idle expiry +30 d, absolute
 * +90 d; unique id, session id, seal and hash on every call (the seal is random bytes: it opens
 * under no key). Override any field.
 */
export function aNewRecord(overrides: Partial<NewRefreshTokenRecord> = {}): NewRefreshTokenRecord {
  const createdAt = overrides.createdAt ?? EPOCH;
  return {
    id: uuidv7(),
    userId: 'user-1',
    sessionId: randomHex(16),
    generation: 0,
    keyId: 7,
    tokenHash: aTokenHash(),
    sealed: randomBytes(60).toString('base64url'),
    tokenVersion: 0,
    globalVersionAtIssuance: 0,
    createdAt,
    expiresAt: new Date(createdAt.getTime() + 30 * DAY),
    absoluteExpiresAt: new Date(createdAt.getTime() + 90 * DAY),
    client: { userAgent: 'jest', ip: '127.0.0.1' },
    ...overrides,
  };
}

/** What `save(input)` must return for `input`. */
export function savedFrom(input: NewRefreshTokenRecord): RefreshTokenRecord {
  return {
    ...input,
    rotatedAt: input.rotatedAt ?? null,
    superseded: input.superseded ?? [],
    lastUsedAt: input.lastUsedAt ?? null,
    revokedAt: null,
    binding: input.binding ?? null,
    revokedReason: null,
  };
}

/**
 * The hot-path rotation of `record` from its current generation at `at` (its stored hash, a fresh
 * next hash and seal, idle expiry +30 d).
 */
export function aRotation(
  record: Pick<RefreshTokenRecord, 'sessionId' | 'generation' | 'tokenHash'>,
  at: Date = new Date(EPOCH.getTime() + 60_000),
  overrides: Partial<RotateInput> = {},
): RotateInput {
  return {
    sessionId: record.sessionId,
    generation: record.generation,
    tokenHash: record.tokenHash,
    nextKeyId: 7,
    nextTokenHash: aTokenHash(),
    nextSealed: randomBytes(60).toString('base64url'),
    now: at,
    idleExpiresAt: new Date(at.getTime() + 30 * DAY),
    ...overrides,
  };
}

/**
 * A copy of a refresh token with its decoded body changed by `mutate` (bytes: [0] format,
 * [1] key id, [2..18) session id, [18..22) generation, [22..54) nonce, [54..70) tag), re-encoded
 * canonically.
 */
export function tamperToken(token: string, mutate: (body: Buffer) => void): string {
  const body = Buffer.from(token.slice(3), 'base64url');
  mutate(body);
  return `rt_${body.toString('base64url')}`;
}

/**
 * A 32-byte secret, unique per call. Given other secrets, one whose key id differs from all of
 * theirs: the key id is one byte, so two random secrets collide once in 256 pairs and the codec
 * then refuses the list (as it should).
 */
export function aSecret(...distinctFrom: string[]): string {
  const taken = new Set(distinctFrom.map((other) => keyIdOf(Buffer.from(other))));
  for (;;) {
    const secret = randomBytes(32).toString('base64url');
    if (!taken.has(keyIdOf(Buffer.from(secret)))) return secret;
  }
}
