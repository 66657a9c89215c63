import type { Cluster, Redis } from 'ioredis';
import type { DPoPReplayCache } from '../../domain/dpop-replay-cache';
import { OptionsError, StoreUnavailableError } from '../../domain/errors';

/** Options of {@link RedisDPoPReplayCache}. */
export interface RedisDPoPReplayCacheOptions {
  /**
   * Your ioredis client, `Redis` or `Cluster`. The cache sends one `SET` per claim on it and never
   * connects, closes or reconfigures it. Every instance given a client of the same Redis (and the
   * same `prefix`) shares the claims, so a proof replayed to another instance is refused too.
   */
  connection: Redis | Cluster;
  /** Prefix of every key. Default `refresh-rotation:dpop:`. */
  prefix?: string | undefined;
  /**
   * How long a claim may take before it counts as failed (the proof is then refused with
   * `StoreUnavailableError`, answered 503), ms. Default 1000.
   */
  timeoutMs?: number | undefined;
}

/** The key prefix unless told otherwise. */
export const DEFAULT_DPOP_REPLAY_PREFIX = 'refresh-rotation:dpop:';

function isClient(value: unknown): value is Redis | Cluster {
  return typeof (value as { set?: unknown } | null)?.set === 'function';
}

/**
 * The DPoP replay cache on Redis, for several app instances: a claim is one
 * `SET <prefix><key> 1 PX <ttl> NX`, which Redis applies atomically, so of concurrent claims of one
 * proof on any number of instances exactly one wins, and the key expires by itself.
 */
export class RedisDPoPReplayCache implements DPoPReplayCache {
  private readonly connection: Redis | Cluster;
  private readonly prefix: string;
  private readonly timeoutMs: number;

  constructor(options: RedisDPoPReplayCacheOptions) {
    if (!isClient(options?.connection))
      throw new OptionsError('connection must be an ioredis client (Redis or Cluster)');
    const prefix = options.prefix ?? DEFAULT_DPOP_REPLAY_PREFIX;
    if (typeof prefix !== 'string')
      throw new OptionsError(`prefix must be a string; got ${typeof prefix}`);
    const timeoutMs = options.timeoutMs ?? 1_000;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1)
      throw new OptionsError(`timeoutMs must be a whole number >= 1; got ${String(timeoutMs)}`);
    this.connection = options.connection;
    this.prefix = prefix;
    this.timeoutMs = timeoutMs;
  }

  /**
   * True the first time `key` is claimed within `ttlMs` on any instance; false for a replay.
   * Rejects with `StoreUnavailableError` when Redis does not answer within `timeoutMs`.
   */
  async claim(key: string, ttlMs: number): Promise<boolean> {
    const ttl = Math.max(1, Math.ceil(ttlMs));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
    });
    try {
      const set = this.connection.set(`${this.prefix}${key}`, '1', 'PX', ttl, 'NX');
      // A command that loses the race must not surface later as an unhandled rejection.
      set.catch(() => undefined);
      return (await Promise.race([set, timeout])) === 'OK';
    } catch (error) {
      throw new StoreUnavailableError('the DPoP replay cache (Redis) is unavailable', {
        cause: error,
      });
    } finally {
      clearTimeout(timer);
    }
  }
}
