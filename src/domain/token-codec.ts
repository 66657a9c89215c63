/**
 * The refresh-token string (docs/architecture.md, "The token"), format 2: `rt_` + base64url of
 * `[format 1B][key id 1B][session id 16B][generation 4B BE][tag 16B][anchor 32B]`, where
 *
 * - `anchor = SHA-256(label ‖ sessionSalt)`: the same in every generation of a session, so the
 *   next token can be computed from the presented one with no read. It is what a database leak
 *   alone cannot supply in a token's place: the salt is stored, the anchor is not, and the tag
 *   needs the secret;
 * - `tag = HMAC-SHA256(secret[keyId], label ‖ sessionId ‖ generation ‖ anchor)`, truncated to
 *   16 bytes: checked with the secret alone, before any I/O, so a token we did not mint costs CPU
 *   only.
 *
 * The token of a (session, generation, key) is deterministic, so the grace path answers with the
 * same token again without storing it. Neither a database leak alone (no secret: no tag) nor a
 * secret leak alone (no salt: no anchor) is enough to mint one. What the one-command hot path
 * gives up (docs/decisions.md): someone holding the secret AND any token of a session, even a
 * rotated one, can compute the session's other generations. Pure: no I/O.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { MalformedTokenError, OptionsError } from './errors';

/** Lets secret scanners recognise a leaked refresh token. */
export const TOKEN_PREFIX = 'rt_';
/**
 * The only format this codec writes and reads. Format 1 (a salted MAC per generation, which the
 * next token could not be computed from without reading the record) is refused: pre-1.0, no
 * migration (docs/decisions.md).
 */
export const TOKEN_FORMAT = 2;
/** Minimum length of each refresh secret, in bytes. */
export const MIN_SECRET_BYTES = 32;
/** Largest generation a token can carry (4 bytes, unsigned). */
export const MAX_GENERATION = 0xffff_ffff;

const SESSION_ID_BYTES = 16;
const SALT_BYTES = 32;
const TAG_BYTES = 16;
const ANCHOR_BYTES = 32;
const TAG_OFFSET = 2 + SESSION_ID_BYTES + 4;
const ANCHOR_OFFSET = TAG_OFFSET + TAG_BYTES;
const BODY_BYTES = ANCHOR_OFFSET + ANCHOR_BYTES;
const BODY_CHARS = Math.ceil((BODY_BYTES * 4) / 3);
const TOKEN_PATTERN = new RegExp(`^${TOKEN_PREFIX}[A-Za-z0-9_-]{${BODY_CHARS}}$`);
/** Domain separation: a tag or anchor made for this purpose and format can't be confused with any other hash. */
const TAG_LABEL = Buffer.from('refresh-rotation/refresh-token-tag/v2\0', 'utf8');
const ANCHOR_LABEL = Buffer.from('refresh-rotation/session-anchor/v2\0', 'utf8');
const KEY_ID_LABEL = Buffer.from('refresh-rotation/key-id/v1\0', 'utf8');
const HEX_SESSION_ID = /^[0-9a-f]{32}$/;
const HEX_SALT = /^[0-9a-f]{64}$/;

/** A refresh token taken apart; its tag is checked by `parse`, its anchor by `verify`. */
export interface ParsedRefreshToken {
  format: number;
  keyId: number;
  /** 32 lowercase hex characters. */
  sessionId: string;
  generation: number;
  tag: Buffer;
  anchor: Buffer;
}

/** What a token is computed from. */
export interface TokenSubject {
  /** 32 lowercase hex characters (16 bytes). */
  sessionId: string;
  generation: number;
  /** 64 lowercase hex characters (32 bytes): the record's `salt`. */
  salt: string;
}

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
 * Encodes, parses and verifies refresh tokens with a list of secrets: the first signs, all verify.
 * Throws `OptionsError` at construction for an empty list, a secret shorter than 32 bytes, or two
 * secrets that derive the same key id.
 */
export class TokenCodec {
  /** Key id of the secret that signs new tokens. */
  readonly currentKeyId: number;
  private readonly secrets: ReadonlyMap<number, Buffer>;

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
    this.currentKeyId = keyIdOf(secretBytes(secrets[0] as string | Buffer, 0));
  }

  /** Whether a secret with this key id is configured. */
  hasKey(keyId: number): boolean {
    return this.secrets.has(keyId);
  }

  /**
   * The token for (session, generation) under the secret `keyId` (default: the current one).
   * Deterministic. Throws `RangeError` for an invalid subject or an unknown key id (a programming
   * error, not a client error).
   */
  encode(subject: TokenSubject, keyId: number = this.currentKeyId): string {
    if (!HEX_SALT.test(subject.salt))
      throw new RangeError('salt must be 64 lowercase hex characters');
    return this.assemble(subject.sessionId, subject.generation, anchorOf(subject.salt), keyId);
  }

  /**
   * The token of the generation after `parsed`, under the secret `keyId` (default: the current
   * one), computed from the presented token alone (its anchor): what the hot path stores the hash
   * of before it has read the record. Equal to `encode` of the same session at that generation.
   * Throws `RangeError` past {@link MAX_GENERATION}.
   */
  encodeNext(parsed: ParsedRefreshToken, keyId: number = this.currentKeyId): string {
    return this.assemble(parsed.sessionId, parsed.generation + 1, parsed.anchor, keyId);
  }

  /**
   * Takes a token apart without any I/O. Throws `MalformedTokenError` (and nothing else, whatever
   * the input) for a non-string, a wrong prefix or length, a non-canonical encoding, an unknown
   * format or an unknown key id. Neither the tag nor the anchor is checked: see `hasValidTag` and
   * `verify`.
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
      tag: Buffer.from(body.subarray(TAG_OFFSET, ANCHOR_OFFSET)),
      anchor: Buffer.from(body.subarray(ANCHOR_OFFSET)),
    };
  }

  /**
   * Whether the parsed token's tag was made with one of our secrets. Needs no record: the check
   * that keeps a flood of tokens we never minted away from the database. Constant-time.
   */
  hasValidTag(parsed: ParsedRefreshToken): boolean {
    if (!this.secrets.has(parsed.keyId) || parsed.tag.length !== TAG_BYTES) return false;
    if (parsed.anchor.length !== ANCHOR_BYTES) return false;
    const expected = this.tag(parsed.keyId, parsed.sessionId, parsed.generation, parsed.anchor);
    return timingSafeEqual(expected, parsed.tag);
  }

  /** Whether the parsed token is one of this session's: a valid tag and the anchor of `salt`. Constant-time. */
  verify(parsed: ParsedRefreshToken, salt: string): boolean {
    if (!HEX_SALT.test(salt) || !this.hasValidTag(parsed)) return false;
    return timingSafeEqual(anchorOf(salt), parsed.anchor);
  }

  private assemble(sessionId: string, generation: number, anchor: Buffer, keyId: number): string {
    if (!Number.isInteger(generation) || generation < 0 || generation > MAX_GENERATION) {
      throw new RangeError(`generation must be an integer in [0, ${MAX_GENERATION}]`);
    }
    if (!HEX_SESSION_ID.test(sessionId))
      throw new RangeError('sessionId must be 32 lowercase hex characters');
    const body = Buffer.alloc(BODY_BYTES);
    body.writeUInt8(TOKEN_FORMAT, 0);
    body.writeUInt8(keyId, 1);
    body.write(sessionId, 2, SESSION_ID_BYTES, 'hex');
    body.writeUInt32BE(generation, 2 + SESSION_ID_BYTES);
    this.tag(keyId, sessionId, generation, anchor).copy(body, TAG_OFFSET);
    anchor.copy(body, ANCHOR_OFFSET);
    return TOKEN_PREFIX + body.toString('base64url');
  }

  private tag(keyId: number, sessionId: string, generation: number, anchor: Buffer): Buffer {
    const secret = this.secrets.get(keyId);
    if (!secret) throw new RangeError(`no refresh secret with key id ${keyId}`);
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(generation, 0);
    return createHmac('sha256', secret)
      .update(TAG_LABEL)
      .update(Buffer.from(sessionId, 'hex'))
      .update(counter)
      .update(anchor)
      .digest()
      .subarray(0, TAG_BYTES);
  }
}

/** The anchor of a session: SHA-256 of a label and its salt (see the file comment). */
export function anchorOf(salt: string): Buffer {
  return createHash('sha256').update(ANCHOR_LABEL).update(Buffer.from(salt, 'hex')).digest();
}

/** Sizes of the random parts of a session, for whoever creates one. */
export const SESSION_RANDOM_BYTES = { sessionId: SESSION_ID_BYTES, salt: SALT_BYTES } as const;
