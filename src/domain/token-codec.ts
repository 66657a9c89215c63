/**
 * The refresh-token string (docs/architecture.md, "The token"), format 3: `rt_` + base64url of
 * `[format 1B][key id 1B][session id 16B][generation 4B BE][nonce 32B][tag 16B]`, where
 *
 * - `nonce` is 32 bytes from `crypto.randomBytes`, drawn afresh for every generation: nothing in
 *   one token, with or without the secrets, lets anyone compute another one of the session;
 * - `tag = HMAC-SHA256(secret[keyId], label ‖ sessionId ‖ generation ‖ nonce)`, truncated to
 *   16 bytes: checked with the secret alone, before any I/O, so a token we did not mint costs CPU
 *   only.
 *
 * The token is not computable from the record either: the record keeps its hash and the nonce
 * sealed under a key derived from the secret (`token-seal.ts`), which is how the grace path hands
 * every straggler the same current token. Pure: no I/O (randomness comes from `node:crypto`).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { MalformedTokenError, OptionsError } from './errors';
import {
  deriveSealKey,
  seal,
  SEAL_IV_BYTES,
  SEALED_NONCE_BYTES,
  unseal,
  type SealContext,
} from './token-seal';

/** Lets secret scanners recognise a leaked refresh token. */
export const TOKEN_PREFIX = 'rt_';
/**
 * The only format this codec writes and reads. Format 1 (a salted MAC per generation) and format 2
 * (a per-session anchor, from which the next token could be computed with a secret) are refused
 * as malformed: pre-1.0, no migration (docs/decisions.md).
 */
export const TOKEN_FORMAT = 3;
/** Minimum length of each refresh secret, in bytes. */
export const MIN_SECRET_BYTES = 32;
/** Largest generation a token can carry (4 bytes, unsigned). */
export const MAX_GENERATION = 0xffff_ffff;

const SESSION_ID_BYTES = 16;
const NONCE_BYTES = SEALED_NONCE_BYTES;
const TAG_BYTES = 16;
const NONCE_OFFSET = 2 + SESSION_ID_BYTES + 4;
const TAG_OFFSET = NONCE_OFFSET + NONCE_BYTES;
const BODY_BYTES = TAG_OFFSET + TAG_BYTES;
const BODY_CHARS = Math.ceil((BODY_BYTES * 4) / 3);
const TOKEN_PATTERN = new RegExp(`^${TOKEN_PREFIX}[A-Za-z0-9_-]{${BODY_CHARS}}$`);
/** Domain separation: a tag made for this purpose and format can't be confused with any other MAC. */
const TAG_LABEL = Buffer.from('refresh-rotation/refresh-token-tag/v3\0', 'utf8');
const KEY_ID_LABEL = Buffer.from('refresh-rotation/key-id/v1\0', 'utf8');
const HEX_SESSION_ID = /^[0-9a-f]{32}$/;

/** Whether `value` is a session id as tokens carry it: 32 lowercase hex characters. */
export function isSessionId(value: unknown): value is string {
  return typeof value === 'string' && HEX_SESSION_ID.test(value);
}

/** A refresh token taken apart; its tag is checked by `hasValidTag`. */
export interface ParsedRefreshToken {
  format: number;
  keyId: number;
  /** 32 lowercase hex characters. */
  sessionId: string;
  generation: number;
  /** 32 random bytes, drawn for this generation alone. */
  nonce: Buffer;
  tag: Buffer;
}

/** What a token string is assembled from. */
export interface TokenSubject {
  /** 32 lowercase hex characters (16 bytes). */
  sessionId: string;
  generation: number;
  /** 32 bytes. */
  nonce: Buffer;
}

/** A token drawn for one generation, and what the record stores of it. */
export interface MintedToken {
  /** The token string, for the client only: never stored. */
  token: string;
  /** Key id of the secret that tagged and sealed it. */
  keyId: number;
  /** Hex SHA-256 of `token`: the record's `tokenHash`. */
  tokenHash: string;
  /** Its nonce sealed for (session, generation, key id): the record's `sealed`. */
  sealed: string;
}

/** Where a sealed token lives: the fields of the record that name and open it. */
export type SealedToken = SealContext & { sealed: string };

/**
 * The stable key id of a secret: first byte of a labelled SHA-256 of it. Derived, not positional,
 * so reordering the secret list on rotation keeps tokens signed by an older secret verifiable.
 */
export function keyIdOf(secret: Buffer): number {
  return createHash('sha256').update(KEY_ID_LABEL).update(secret).digest()[0] as number;
}

/** Hex SHA-256 of a token string: what the repository stores and looks up. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function secretBytes(secret: string | Buffer, index: number): Buffer {
  const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
  if (bytes.length < MIN_SECRET_BYTES) {
    throw new OptionsError(
      `refreshToken.secrets[${index}] must be at least ${MIN_SECRET_BYTES} bytes; got ${bytes.length} ` +
        `(generate one with: node -e "console.log(require('crypto').randomBytes(32).toString('base64url'))")`,
    );
  }
  return bytes;
}

/**
 * Mints, parses and verifies refresh tokens with a list of secrets: the first tags and seals new
 * tokens, all verify and unseal. Throws `OptionsError` at construction for an empty list, a secret
 * shorter than 32 bytes, or two secrets that derive the same key id.
 */
export class TokenCodec {
  /** Key id of the secret that signs new tokens. */
  readonly currentKeyId: number;
  private readonly secrets: ReadonlyMap<number, Buffer>;
  /** One HKDF per secret, at construction: the hot path seals with a ready key. */
  private readonly sealKeys: ReadonlyMap<number, KeyObject>;

  constructor(secrets: ReadonlyArray<string | Buffer>) {
    if (!Array.isArray(secrets) || secrets.length === 0) {
      throw new OptionsError(
        `refreshToken.secrets must contain at least one ${MIN_SECRET_BYTES}-byte secret; got ${Array.isArray(secrets) ? 0 : typeof secrets}`,
      );
    }
    const byId = new Map<number, Buffer>();
    secrets.forEach((secret, index) => {
      if (typeof secret !== 'string' && !Buffer.isBuffer(secret)) {
        throw new OptionsError(`refreshToken.secrets[${index}] must be a string or a Buffer`);
      }
      const bytes = secretBytes(secret, index);
      const id = keyIdOf(bytes);
      const earlier = byId.get(id);
      if (earlier) {
        throw new OptionsError(
          earlier.equals(bytes)
            ? `refreshToken.secrets[${index}] repeats an earlier secret; remove the duplicate`
            : `refreshToken.secrets[${index}] derives the same key id (${id}) as an earlier secret; replace it with a freshly generated secret`,
        );
      }
      byId.set(id, bytes);
    });
    this.secrets = byId;
    this.sealKeys = new Map([...byId].map(([id, bytes]) => [id, deriveSealKey(bytes)]));
    this.currentKeyId = keyIdOf(secretBytes(secrets[0] as string | Buffer, 0));
  }

  /** Whether a secret with this key id is configured. */
  hasKey(keyId: number): boolean {
    return this.secrets.has(keyId);
  }

  /**
   * A new token for (session, generation) under the secret `keyId` (default: the current one),
   * with a nonce drawn from `crypto.randomBytes` now: never derived from an earlier token, so
   * whoever holds a secret and an old token still cannot compute this one. Throws `RangeError`
   * for an invalid session id or generation, or an unknown key id (programming errors).
   */
  mint(sessionId: string, generation: number, keyId: number = this.currentKeyId): MintedToken {
    // One draw for the nonce and the seal's IV: each call into the CSPRNG costs about as much as
    // the AES-GCM itself (docs/benchmarks.md), and the two parts are independent random bytes.
    const random = randomBytes(NONCE_BYTES + SEAL_IV_BYTES);
    const nonce = random.subarray(0, NONCE_BYTES);
    const token = this.encode({ sessionId, generation, nonce }, keyId);
    const iv = random.subarray(NONCE_BYTES);
    const sealed = seal(this.sealKey(keyId), { sessionId, generation, keyId }, nonce, iv);
    return { token, keyId, tokenHash: hashToken(token), sealed };
  }

  /**
   * The token of a record's current generation, rebuilt from its `sealed` nonce: what the grace
   * path answers, the same string every time. Null when the key id's secret is no longer
   * configured, or the sealed value does not open for this session, generation and key id.
   */
  unsealCurrent(record: SealedToken): string | null {
    const key = this.sealKeys.get(record.keyId);
    if (!key) return null;
    const nonce = unseal(key, record, record.sealed);
    return nonce ? this.encode({ ...record, nonce }, record.keyId) : null;
  }

  /**
   * The token string of (session, generation, nonce) under the secret `keyId` (default: the
   * current one). Deterministic in its inputs; new tokens come from {@link mint}. Throws
   * `RangeError` for an invalid subject or an unknown key id.
   */
  encode(subject: TokenSubject, keyId: number = this.currentKeyId): string {
    const { sessionId, generation, nonce } = subject;
    if (!Number.isInteger(generation) || generation < 0 || generation > MAX_GENERATION) {
      throw new RangeError(`generation must be an integer in [0, ${MAX_GENERATION}]`);
    }
    if (!isSessionId(sessionId))
      throw new RangeError('sessionId must be 32 lowercase hex characters');
    if (!Buffer.isBuffer(nonce) || nonce.length !== NONCE_BYTES)
      throw new RangeError(`nonce must be ${NONCE_BYTES} bytes`);
    const body = Buffer.alloc(BODY_BYTES);
    body.writeUInt8(TOKEN_FORMAT, 0);
    body.writeUInt8(keyId, 1);
    body.write(sessionId, 2, SESSION_ID_BYTES, 'hex');
    body.writeUInt32BE(generation, 2 + SESSION_ID_BYTES);
    nonce.copy(body, NONCE_OFFSET);
    this.tag(keyId, sessionId, generation, nonce).copy(body, TAG_OFFSET);
    return TOKEN_PREFIX + body.toString('base64url');
  }

  /**
   * Takes a token apart without any I/O. Throws `MalformedTokenError` (and nothing else, whatever
   * the input) for a non-string, a wrong prefix or length, a non-canonical encoding, an unknown
   * format (1 and 2 included) or an unknown key id. The tag is not checked: see `hasValidTag`.
   */
  parse(token: unknown): ParsedRefreshToken {
    if (typeof token !== 'string' || !TOKEN_PATTERN.test(token)) throw new MalformedTokenError();
    const text = token.slice(TOKEN_PREFIX.length);
    const body = Buffer.from(text, 'base64url');
    // Only the canonical encoding is accepted, so no two strings are the same token.
    if (body.length !== BODY_BYTES || body.toString('base64url') !== text)
      throw new MalformedTokenError();
    const format = body.readUInt8(0);
    if (format !== TOKEN_FORMAT) throw new MalformedTokenError('unknown refresh token format');
    const keyId = body.readUInt8(1);
    if (!this.secrets.has(keyId))
      throw new MalformedTokenError('refresh token signed by an unknown key');
    return {
      format,
      keyId,
      sessionId: body.subarray(2, 2 + SESSION_ID_BYTES).toString('hex'),
      generation: body.readUInt32BE(2 + SESSION_ID_BYTES),
      nonce: Buffer.from(body.subarray(NONCE_OFFSET, TAG_OFFSET)),
      tag: Buffer.from(body.subarray(TAG_OFFSET)),
    };
  }

  /**
   * Whether the parsed token's tag was made with one of our secrets. Needs no record: the check
   * that keeps a flood of tokens we never minted away from the database. Constant-time: the tag
   * is the secret-bearing part, a timing leak would let a forger learn it byte by byte.
   */
  hasValidTag(parsed: ParsedRefreshToken): boolean {
    if (!this.secrets.has(parsed.keyId) || parsed.tag.length !== TAG_BYTES) return false;
    if (parsed.nonce.length !== NONCE_BYTES) return false;
    const expected = this.tag(parsed.keyId, parsed.sessionId, parsed.generation, parsed.nonce);
    return timingSafeEqual(expected, parsed.tag);
  }

  private sealKey(keyId: number): KeyObject {
    const key = this.sealKeys.get(keyId);
    if (!key) throw new RangeError(`no refresh secret with key id ${keyId}`);
    return key;
  }

  private tag(keyId: number, sessionId: string, generation: number, nonce: Buffer): Buffer {
    const secret = this.secrets.get(keyId);
    if (!secret) throw new RangeError(`no refresh secret with key id ${keyId}`);
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(generation, 0);
    return createHmac('sha256', secret)
      .update(TAG_LABEL)
      .update(Buffer.from(sessionId, 'hex'))
      .update(counter)
      .update(nonce)
      .digest()
      .subarray(0, TAG_BYTES);
  }
}

/** Sizes of the random parts of a session, for whoever creates one. */
export const SESSION_RANDOM_BYTES = { sessionId: SESSION_ID_BYTES, nonce: NONCE_BYTES } as const;
