import { createHmac, timingSafeEqual } from 'node:crypto';
import { parseDuration, type Duration } from '../../domain/duration';
import { OptionsError } from '../../domain/errors';
import type { Clock } from '../../domain/refresh-token';

/** Server nonces for DPoP proofs (RFC 9449 §8, §9). */
export interface DPoPNonceOptions {
  /**
   * At least 32 bytes (a string's UTF-8 bytes, or a Buffer). Every instance that answers the
   * same clients needs the same secret: a nonce is an HMAC, not a stored value.
   */
  secret: string | Buffer;
  /**
   * How long one nonce is handed out. A nonce is accepted during its own step and the next one,
   * so between `step` and twice `step` after a client received it. Default `'5m'`.
   */
  step?: Duration | undefined;
}

/** Bytes of HMAC-SHA-256: a nonce is their base64url, 43 characters. */
const NONCE_LENGTH = 43;
const MIN_SECRET_BYTES = 32;

/**
 * Stateless nonces: the nonce of time step `n` is HMAC-SHA-256(secret, n). Nothing is stored, so
 * any instance with the secret checks any instance's nonce, and a nonce cannot be made without
 * the secret. Why nonces at all: they bound how far ahead a client (or a thief with its key for a
 * while) can pre-compute proofs, which `iat` alone does not, since the client sets `iat`.
 */
export class DPoPNonces {
  private readonly secret: Buffer;
  private readonly stepMs: number;
  private memo: { step: number; nonce: string } | undefined;

  constructor(
    options: DPoPNonceOptions,
    private readonly clock: Clock,
    name: string,
  ) {
    const { secret } = options ?? {};
    const bytes =
      typeof secret === 'string'
        ? Buffer.from(secret, 'utf8')
        : Buffer.isBuffer(secret)
          ? Buffer.from(secret)
          : null;
    if (bytes === null || bytes.length < MIN_SECRET_BYTES) {
      throw new OptionsError(
        `${name}.nonce.secret must be a string or Buffer of at least ${MIN_SECRET_BYTES} bytes (e.g. randomBytes(32).toString('base64url')), the same on every instance; got ${bytes === null ? typeof secret : `${bytes.length} bytes`}`,
      );
    }
    this.secret = bytes;
    this.stepMs = parseDuration(options.step ?? '5m', `${name}.nonce.step`);
    if (this.stepMs < 1_000)
      throw new OptionsError(`${name}.nonce.step must be at least 1s; got ${this.stepMs}ms`);
  }

  /** The nonce to hand out now (the `DPoP-Nonce` header). */
  current(): string {
    const step = this.stepNow();
    if (this.memo?.step !== step) this.memo = { step, nonce: this.nonceOf(step) };
    return this.memo.nonce;
  }

  /** Whether `nonce` is the nonce of the current or the previous step. */
  accepts(nonce: unknown): boolean {
    if (typeof nonce !== 'string' || nonce.length !== NONCE_LENGTH) return false;
    const step = this.stepNow();
    // Both candidates are compared, in constant time: a timing difference would let a client
    // learn a valid nonce byte by byte without the secret.
    const current = sameBytes(nonce, this.current());
    const previous = sameBytes(nonce, this.nonceOf(step - 1));
    return current || previous;
  }

  private stepNow(): number {
    return Math.floor(this.clock.now().getTime() / this.stepMs);
  }

  private nonceOf(step: number): string {
    return createHmac('sha256', this.secret)
      .update(`refresh-rotation DPoP nonce ${step}`)
      .digest('base64url');
  }
}

function sameBytes(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}
