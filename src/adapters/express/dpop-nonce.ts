import type { Duration } from '../../domain/duration';
import type { Clock } from '../../domain/refresh-token';
import { SteppedHmac } from './stepped-hmac';

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

/**
 * Stateless nonces: the nonce of time step `n` is HMAC-SHA-256(secret, n). Nothing is stored, so
 * any instance with the secret checks any instance's nonce, and a nonce cannot be made without
 * the secret. Why nonces at all: they bound how far ahead a client (or a thief with its key for a
 * while) can pre-compute proofs, which `iat` alone does not, since the client sets `iat`.
 */
export class DPoPNonces {
  private readonly hmac: SteppedHmac;
  private memo: { step: number; nonce: string } | undefined;

  constructor(options: DPoPNonceOptions, clock: Clock, name: string) {
    const { secret, step } = options ?? {};
    this.hmac = new SteppedHmac(
      { secret, step: step ?? '5m' },
      { secret: `${name}.nonce.secret`, step: `${name}.nonce.step` },
      clock,
    );
  }

  /** The nonce to hand out now (the `DPoP-Nonce` header). */
  current(): string {
    const step = this.hmac.step();
    if (this.memo?.step !== step) this.memo = { step, nonce: this.hmac.of(nonceMessage(step)) };
    return this.memo.nonce;
  }

  /** Whether `nonce` is the nonce of the current or the previous step. */
  accepts(nonce: unknown): boolean {
    if (typeof nonce !== 'string' || nonce.length !== NONCE_LENGTH) return false;
    return this.hmac.accepts(nonce, nonceMessage);
  }
}

const nonceMessage = (step: number) => `refresh-rotation DPoP nonce ${step}`;
