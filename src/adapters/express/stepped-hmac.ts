/**
 * Stateless values a server hands out and later checks, with nothing stored: DPoP nonces
 * (dpop-nonce.ts) and DBSC challenges (dbsc.ts). Each is an HMAC-SHA-256 with a secret every
 * instance shares, over a message that names its purpose and a time step; one is accepted during
 * its own step and the next, so any instance checks any instance's values, and nobody makes one
 * without the secret.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { parseDuration, type Duration } from '../../domain/duration';
import { OptionsError } from '../../domain/errors';
import type { Clock } from '../../domain/refresh-token';

const MIN_SECRET_BYTES = 32;
const MIN_STEP_MS = 1_000;

/** `secret` as bytes: a string's UTF-8 or a Buffer, at least 32; `OptionsError` naming `option`. */
export function secretBytes(secret: unknown, option: string): Buffer {
  const bytes =
    typeof secret === 'string'
      ? Buffer.from(secret, 'utf8')
      : Buffer.isBuffer(secret)
        ? Buffer.from(secret)
        : null;
  if (bytes === null || bytes.length < MIN_SECRET_BYTES)
    throw new OptionsError(
      `${option} must be a string or Buffer of at least ${MIN_SECRET_BYTES} bytes (e.g. randomBytes(32).toString('base64url')), the same on every instance; got ${bytes === null ? typeof secret : `${bytes.length} bytes`}`,
    );
  return bytes;
}

/** Equal texts, compared in constant time. */
export function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}

/** HMACs with one secret, over messages of a time step of `step` (at least 1s). */
export class SteppedHmac {
  private readonly secret: Buffer;
  private readonly stepMs: number;

  constructor(
    options: { secret: unknown; step: Duration },
    names: { secret: string; step: string },
    private readonly clock: Clock,
  ) {
    this.secret = secretBytes(options.secret, names.secret);
    this.stepMs = parseDuration(options.step, names.step);
    if (this.stepMs < MIN_STEP_MS)
      throw new OptionsError(`${names.step} must be at least 1s; got ${this.stepMs}ms`);
  }

  /** The time step now. */
  step(): number {
    return Math.floor(this.clock.now().getTime() / this.stepMs);
  }

  /** The HMAC of `message`, base64url (43 characters). */
  of(message: string): string {
    return createHmac('sha256', this.secret).update(message).digest('base64url');
  }

  /**
   * Whether `value` is the HMAC of `messageAt` for the current or the previous step. Both are
   * compared, in constant time: a timing difference would let a client learn a valid value byte
   * by byte without the secret.
   */
  accepts(value: unknown, messageAt: (step: number) => string): boolean {
    if (typeof value !== 'string') return false;
    const step = this.step();
    const current = sameText(value, this.of(messageAt(step)));
    const previous = sameText(value, this.of(messageAt(step - 1)));
    return current || previous;
  }
}
