/**
 * The record's `sealed` field (docs/architecture.md, "The token"): the current token's nonce
 * under AES-256-GCM, so the grace path can hand every straggler the **same** current token
 * without the token, or anything it can be rebuilt from, being stored in the clear.
 *
 * - The key is derived from a refresh secret with HKDF-SHA256 and a label of its own, so the
 *   sealing key is never the tag key: knowing one tells nothing about the other.
 * - The additional data binds the sealed nonce to its session, generation and key id: a sealed
 *   value copied onto another record, or moved to another generation, does not open.
 * - The IV is 12 random bytes per seal. The key is one per secret, so the usual bound for random
 *   GCM IVs applies per secret (2^32 seals before the chance of a repeated IV passes 2^-32):
 *   about 136 years at 1,000 rotations a second; secrets rotate long before.
 *
 * Pure: no I/O; randomness from `node:crypto`.
 */
import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';

/** What a sealed nonce is bound to (the GCM additional data). */
export interface SealContext {
  /** 32 lowercase hex characters (16 bytes). */
  sessionId: string;
  generation: number;
  keyId: number;
}

const CIPHER = 'aes-256-gcm';
const KEY_BYTES = 32;
/** Length of the GCM IV each seal takes. */
export const SEAL_IV_BYTES = 12;
const IV_BYTES = SEAL_IV_BYTES;
const GCM_TAG_BYTES = 16;
/** The sealed plaintext is always one nonce. */
export const SEALED_NONCE_BYTES = 32;
const SEALED_BYTES = IV_BYTES + SEALED_NONCE_BYTES + GCM_TAG_BYTES;
const SEALED_PATTERN = new RegExp(`^[A-Za-z0-9_-]{${Math.ceil((SEALED_BYTES * 4) / 3)}}$`);
/** Domain separation: the HKDF output for sealing can't equal a key derived for any other use. */
const HKDF_SALT = Buffer.from('refresh-rotation/nonce-seal/salt/v1', 'utf8');
const HKDF_INFO = Buffer.from('refresh-rotation/nonce-seal/aes-256-gcm/v1', 'utf8');
const AAD_LABEL = Buffer.from('refresh-rotation/nonce-seal/aad/v1\0', 'utf8');

/** The AES-256-GCM key of a refresh secret (HKDF-SHA256). Derive once per secret and keep it. */
export function deriveSealKey(secret: Buffer): KeyObject {
  return createSecretKey(Buffer.from(hkdfSync('sha256', secret, HKDF_SALT, HKDF_INFO, KEY_BYTES)));
}

/** Fixed-width fields, so no two contexts encode to the same bytes. */
function additionalData(context: SealContext): Buffer {
  const fields = Buffer.alloc(16 + 4 + 1);
  fields.write(context.sessionId, 0, 16, 'hex');
  fields.writeUInt32BE(context.generation, 16);
  fields.writeUInt8(context.keyId, 20);
  return Buffer.concat([AAD_LABEL, fields]);
}

/**
 * `iv ‖ ciphertext ‖ GCM tag` of `nonce`, base64url (80 characters). `iv` must be fresh random
 * bytes for every seal (default: drawn here); a caller that draws the nonce may draw both at once.
 */
export function seal(
  key: KeyObject,
  context: SealContext,
  nonce: Buffer,
  iv: Buffer = randomBytes(IV_BYTES),
): string {
  if (nonce.length !== SEALED_NONCE_BYTES)
    throw new RangeError(`nonce must be ${SEALED_NONCE_BYTES} bytes`);
  if (iv.length !== IV_BYTES) throw new RangeError(`iv must be ${IV_BYTES} bytes`);
  const cipher = createCipheriv(CIPHER, key, iv, { authTagLength: GCM_TAG_BYTES });
  cipher.setAAD(additionalData(context));
  const sealed = Buffer.concat([iv, cipher.update(nonce), cipher.final(), cipher.getAuthTag()]);
  return sealed.toString('base64url');
}

/**
 * The nonce sealed in `sealed` for `context`, or null when it does not open: another key, another
 * session, generation or key id, or a changed byte (GCM checks its tag in constant time).
 */
export function unseal(key: KeyObject, context: SealContext, sealed: string): Buffer | null {
  if (typeof sealed !== 'string' || !SEALED_PATTERN.test(sealed)) return null;
  const bytes = Buffer.from(sealed, 'base64url');
  if (bytes.length !== SEALED_BYTES) return null;
  const iv = bytes.subarray(0, IV_BYTES);
  const tag = bytes.subarray(SEALED_BYTES - GCM_TAG_BYTES);
  try {
    const decipher = createDecipheriv(CIPHER, key, iv, { authTagLength: GCM_TAG_BYTES });
    decipher.setAAD(additionalData(context));
    decipher.setAuthTag(tag);
    const nonce = Buffer.concat([
      decipher.update(bytes.subarray(IV_BYTES, SEALED_BYTES - GCM_TAG_BYTES)),
      decipher.final(),
    ]);
    return nonce;
  } catch {
    return null;
  }
}
