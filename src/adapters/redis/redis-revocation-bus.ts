import type { Redis } from 'ioredis';
import { OptionsError } from '../../domain/errors';
import type {
  RevocationBus,
  RevocationNotice,
  RevocationSignal,
} from '../../domain/revocation-bus';

/** Options of {@link RedisRevocationBus}. */
export interface RedisRevocationBusOptions {
  /**
   * Your ioredis client. Notices are published on it; the bus subscribes on a connection of its own
   * made with `connection.duplicate()` (a subscribed connection can do nothing else), which
   * `close()` closes. Your client is never connected, closed or reconfigured by the bus.
   */
  connection: Redis;
  /** The pub/sub channel. Instances that share it share revocations. Default `refresh-rotation:revocations`. */
  channel?: string;
  /** How long a publish may take before it counts as failed, ms. Default 1000. */
  publishTimeoutMs?: number;
  /**
   * How long `sync()` waits for the subscriber's round trip before the caches are trusted anyway
   * (their lifetime then bounds staleness), ms. Default 250.
   */
  syncTimeoutMs?: number;
  /** Errors of the subscriber connection (it reconnects by itself). Default: ignored. */
  onError?: (error: Error) => void;
}

export const DEFAULT_REVOCATION_CHANNEL = 'refresh-rotation:revocations';
const MAX_ID_LENGTH = 512;

function isId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH;
}

/** A notice from the channel, or null for anything else (the channel is not trusted to be ours alone). */
function parseNotice(message: string): RevocationNotice | null {
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch {
    return null;
  }
  const notice = value as Partial<Record<'kind' | 'userId' | 'sessionId', unknown>> | null;
  if (typeof notice !== 'object' || notice === null) return null;
  if (notice.kind === 'global') return { kind: 'global' };
  if (notice.kind === 'user' && isId(notice.userId)) return { kind: 'user', userId: notice.userId };
  if (notice.kind === 'session' && isId(notice.sessionId))
    return { kind: 'session', sessionId: notice.sessionId };
  return null;
}

/**
 * The `RevocationBus` on Redis pub/sub (DESIGN §4, §9): a revocation on one app instance is
 * published before that instance answers, and every instance drops the versions and session states
 * it cached. Pub/sub delivers at most once, so whenever the subscriber loses its connection every
 * subscriber gets `resync` (drop everything) when it goes and again once it is subscribed again; in
 * between, the caches' own short lifetime (1 s by default) is the fallback. A message on the
 * channel can only make instances drop cached state (more reads), never accept a token.
 */
export class RedisRevocationBus implements RevocationBus {
  private readonly connection: Redis;
  private readonly subscriber: Redis;
  private readonly channel: string;
  private readonly publishTimeoutMs: number;
  private readonly listeners = new Set<(signal: RevocationSignal) => void>();
  private readonly subscribed: Promise<void>;
  private readonly syncTimeoutMs: number;
  private wasSubscribed = false;
  private listening = false;
  private stalled = false;
  private syncBatch: Promise<boolean> | null = null;
  private closing: Promise<void> | undefined;

  constructor(options: RedisRevocationBusOptions) {
    const connection = options?.connection;
    if (typeof connection?.publish !== 'function' || typeof connection.duplicate !== 'function')
      throw new OptionsError('connection must be an ioredis client');
    const channel = options.channel ?? DEFAULT_REVOCATION_CHANNEL;
    if (typeof channel !== 'string' || channel === '')
      throw new OptionsError(`channel must be a non-empty string; got ${JSON.stringify(channel)}`);
    const publishTimeoutMs = options.publishTimeoutMs ?? 1_000;
    if (!Number.isInteger(publishTimeoutMs) || publishTimeoutMs < 1)
      throw new OptionsError(
        `publishTimeoutMs must be a whole number >= 1; got ${String(publishTimeoutMs)}`,
      );
    const syncTimeoutMs = options.syncTimeoutMs ?? 250;
    if (!Number.isInteger(syncTimeoutMs) || syncTimeoutMs < 1)
      throw new OptionsError(
        `syncTimeoutMs must be a whole number >= 1; got ${String(syncTimeoutMs)}`,
      );
    this.connection = connection;
    this.channel = channel;
    this.publishTimeoutMs = publishTimeoutMs;
    this.syncTimeoutMs = syncTimeoutMs;
    const onError = options.onError ?? (() => undefined);
    // Its own connection, subscribed by hand on every (re)connect so `resync` follows the SUBSCRIBE.
    this.subscriber = connection.duplicate({
      lazyConnect: true,
      autoResubscribe: false,
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
    });
    this.subscriber.on('error', onError);
    this.subscriber.on('message', (from: string, message: string) => {
      if (from !== this.channel) return;
      const notice = parseNotice(message);
      if (notice) this.emit(notice);
    });
    this.subscriber.on('close', () => {
      this.listening = false;
      this.stalled = false;
      if (this.wasSubscribed) this.emit({ kind: 'resync' });
    });
    let resolveSubscribed!: () => void;
    this.subscribed = new Promise((resolve) => (resolveSubscribed = resolve));
    this.subscriber.on('ready', () => {
      this.subscriber.subscribe(this.channel).then(
        () => {
          if (this.wasSubscribed) this.emit({ kind: 'resync' });
          this.wasSubscribed = true;
          this.listening = true;
          resolveSubscribed();
        },
        (error: unknown) => onError(error as Error),
      );
    });
    this.subscriber.connect().catch((error: unknown) => onError(error as Error));
  }

  /** Resolves once the subscriber is subscribed for the first time (notices sent before are not heard). */
  ready(): Promise<void> {
    return this.subscribed;
  }

  async publish(notice: RevocationNotice): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () =>
          reject(new Error(`revocation notice not published within ${this.publishTimeoutMs} ms`)),
        this.publishTimeoutMs,
      );
    });
    try {
      await Promise.race([this.connection.publish(this.channel, JSON.stringify(notice)), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A PING on the subscriber connection: Redis answers commands in order, and a notice published
   * before the PING was queued on this connection before its reply, which ioredis hands over
   * first. Calls made in the same tick share one PING; one made after it was sent waits for the
   * next, since the sent one may have passed a later publish. Resolves `false` at once while
   * unsubscribed or while a PING has gone unanswered past `syncTimeoutMs` (Redis stalled), and
   * after `syncTimeoutMs` at worst.
   */
  sync(): Promise<boolean> {
    if (!this.listening || this.stalled) return Promise.resolve(false);
    this.syncBatch ??= new Promise<boolean>((resolve) => {
      process.nextTick(() => {
        this.syncBatch = null;
        const timer = setTimeout(() => {
          // A stalled Redis must not add this wait to every request: until the PING is answered,
          // sync() resolves at once (false) and the caches fall back to their short lifetime.
          this.stalled = true;
          resolve(false);
        }, this.syncTimeoutMs);
        const answered = (synced: boolean) => () => {
          clearTimeout(timer);
          this.stalled = false;
          resolve(synced && this.listening);
        };
        this.subscriber.ping().then(answered(true), answered(false));
      });
    });
    return this.syncBatch;
  }

  subscribe(listener: (signal: RevocationSignal) => void): () => void {
    const own = (signal: RevocationSignal) => listener(signal);
    this.listeners.add(own);
    return () => void this.listeners.delete(own);
  }

  /** Close the subscriber connection (not yours) and forget the listeners. Idempotent. */
  close(): Promise<void> {
    return (this.closing ??= this.doClose());
  }

  private async doClose(): Promise<void> {
    this.listeners.clear();
    this.wasSubscribed = false;
    this.listening = false;
    await this.subscriber.quit().catch(() => this.subscriber.disconnect());
  }

  private emit(signal: RevocationSignal): void {
    for (const listener of [...this.listeners]) {
      try {
        listener({ ...signal });
      } catch {
        // a listener's failure must not stop the others
      }
    }
  }
}
