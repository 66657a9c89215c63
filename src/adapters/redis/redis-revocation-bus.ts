import { Redis, type Cluster } from 'ioredis';
import { OptionsError } from '../../domain/errors';
import type {
  RevocationBus,
  RevocationNotice,
  RevocationSignal,
} from '../../domain/revocation-bus';

/** Options of {@link RedisRevocationBus}. */
export interface RedisRevocationBusOptions {
  /**
   * Your ioredis client, `Redis` or `Cluster`. Notices are published on it; the bus subscribes on a
   * connection of its own made with `connection.duplicate()` (a subscribed connection can do
   * nothing else), which `close()` closes. Your client is never connected, closed or reconfigured
   * by the bus. On a `Cluster`, the channel is a sharded one (`SPUBLISH`/`SSUBSCRIBE`, Redis 7):
   * notices and the subscriber's `PING` then meet on the one node that owns the channel's slot,
   * which keeps `sync()`'s ordering; the subscriber connects to that node (found at start, with
   * the cluster's `redisOptions`). When resharding moves that slot to another node, the old node
   * unsubscribes the bus (ioredis 6 reports it as `moved`): the bus stops answering `sync()` with
   * true, drops every cache (`resync`) and subscribes on the slot's new owner. With ioredis 5, or
   * when the node fails over, the bus stops hearing notices and the caches' lifetime bounds
   * staleness until it is recreated.
   */
  connection: Redis | Cluster;
  /** The pub/sub channel. Instances that share it share revocations. Default `refresh-rotation:revocations`. */
  channel?: string | undefined;
  /** How long a publish may take before it counts as failed, ms. Default 1000. */
  publishTimeoutMs?: number | undefined;
  /**
   * How long `sync()` waits for the subscriber's round trip before the caches are trusted anyway
   * (their lifetime then bounds staleness), ms. Default 250.
   */
  syncTimeoutMs?: number | undefined;
  /** Errors of the subscriber connection (it reconnects by itself). Default: ignored. */
  onError?: ((error: Error) => void) | undefined;
}

const SUBSCRIBER_OPTIONS = {
  lazyConnect: true,
  autoResubscribe: false,
  enableOfflineQueue: true,
  maxRetriesPerRequest: null,
} as const;

function isCluster(connection: Redis | Cluster): connection is Cluster {
  return (connection as { isCluster?: unknown }).isCluster === true;
}

/**
 * A plain connection to the master that owns `channel`'s slot, for `SSUBSCRIBE`. Asks the cluster
 * again every second while it cannot answer; null if the bus closed meanwhile.
 */
async function openShardSubscriber(
  cluster: Cluster,
  channel: string,
  closed: () => boolean,
  onError: (error: Error) => void,
): Promise<Redis | null> {
  while (!closed()) {
    try {
      const slot = Number(await cluster.cluster('KEYSLOT', channel));
      // The slot map may predate a resharding (that is when a subscriber is opened again).
      await new Promise<void>((resolve) => cluster.refreshSlotsCache(() => resolve()));
      const owner = cluster.slots[slot]?.[0];
      if (owner === undefined) throw new Error(`no node owns slot ${slot} of ${channel}`);
      const at = owner.lastIndexOf(':');
      return new Redis({
        ...cluster.options.redisOptions,
        host: owner.slice(0, at),
        port: Number(owner.slice(at + 1)),
        ...SUBSCRIBER_OPTIONS,
      });
    } catch (error) {
      onError(error as Error);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }
  return null;
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
 * The `RevocationBus` on Redis pub/sub (docs/architecture.md, "Revocation and versions";
 * docs/express.md): a revocation on one app instance is published before that instance answers, and
 * every instance drops the versions and session states it cached. Pub/sub delivers at most once, so
 * whenever the subscriber loses its connection every subscriber gets `resync` (drop everything)
 * when it goes and again once it is subscribed again; in between, the caches' own short lifetime
 * (1 s by default) is the fallback. A message on the channel can only make instances drop cached state
 * (more reads), never accept a token.
 */
export class RedisRevocationBus implements RevocationBus {
  private readonly connection: Redis | Cluster;
  private readonly sharded: boolean;
  private subscriber: Redis | null = null;
  private opening: Promise<void>;
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
    this.sharded = isCluster(connection);
    let resolveSubscribed!: () => void;
    this.subscribed = new Promise((resolve) => (resolveSubscribed = resolve));
    // Its own connection, subscribed by hand on every (re)connect so `resync` follows the SUBSCRIBE.
    const listen = (subscriber: Redis) => {
      this.subscriber = subscriber;
      this.listen(subscriber, onError, resolveSubscribed);
    };
    if (!isCluster(connection)) {
      this.opening = Promise.resolve(listen(connection.duplicate(SUBSCRIBER_OPTIONS)));
      return;
    }
    const openOnOwner = async () => {
      const closed = () => this.closing !== undefined;
      const subscriber = await openShardSubscriber(connection, channel, closed, onError);
      if (!subscriber) return;
      // The channel's slot left this node: follow it to its new owner.
      subscriber.once('moved', () => {
        if (this.subscriber !== subscriber || closed()) return;
        this.subscriber = null;
        this.listening = false;
        this.emit({ kind: 'resync' });
        subscriber.disconnect();
        this.opening = this.opening.then(openOnOwner);
      });
      listen(subscriber);
    };
    this.opening = openOnOwner();
  }

  private listen(subscriber: Redis, onError: (error: Error) => void, subscribed: () => void) {
    const [subscribe, event] = this.sharded
      ? (['ssubscribe', 'smessage'] as const)
      : (['subscribe', 'message'] as const);
    subscriber.on('error', onError);
    subscriber.on(event, (from: string, message: string) => {
      if (from !== this.channel) return;
      const notice = parseNotice(message);
      if (notice) this.emit(notice);
    });
    subscriber.on('close', () => {
      if (this.subscriber !== subscriber) return; // one given up for another (moved)
      this.listening = false;
      this.stalled = false;
      if (this.wasSubscribed) this.emit({ kind: 'resync' });
    });
    subscriber.on('ready', () => {
      subscriber[subscribe](this.channel).then(
        () => {
          // Also the first time: what was cached before now was cached without the bus, and a
          // notice published before this subscription was never heard.
          this.emit({ kind: 'resync' });
          this.wasSubscribed = true;
          this.listening = true;
          subscribed();
        },
        (error: unknown) => onError(error as Error),
      );
    });
    subscriber.connect().catch((error: unknown) => onError(error as Error));
  }

  /**
   * Resolves once the subscriber is subscribed for the first time (notices sent before are not
   * heard). It waits as long as Redis is unreachable: bound it if you await it at start. Serving
   * before it resolves is safe; `sync()` answers false until then, so caches keep their short lifetime.
   */
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
      const message = JSON.stringify(notice);
      const sent = this.sharded
        ? this.connection.spublish(this.channel, message)
        : this.connection.publish(this.channel, message);
      await Promise.race([sent, late]);
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
    const subscriber = this.subscriber;
    if (!subscriber || !this.listening || this.stalled) return Promise.resolve(false);
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
        subscriber.ping().then(answered(true), answered(false));
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
    await this.opening;
    const subscriber = this.subscriber;
    await subscriber?.quit().catch(() => subscriber.disconnect());
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
