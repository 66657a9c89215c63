/**
 * What this instance knows about revocations (docs/architecture.md, "Revocation and versions"):
 * the one cache of user and global minimum versions and session liveness, the `RevocationBus`
 * that keeps it fresh across instances, and the count of notices it could not publish. The
 * service asks it for versions and liveness and tells it about every revocation it makes.
 *
 * How old a cached value may be, the one place it is decided: at most `revocationCache.ttlWithBus`
 * (default 5 s) while the bus is synced (every revocation announced before the request has
 * reached this instance, so the bound only covers a notice this instance missed), otherwise at
 * most `revocationCache.ttl` (default 1 s). A revocation made through this instance clears its
 * entries at once, here and, through the bus, on every other instance before the call returns.
 * The version stores keep no cache of their own.
 */
import type { AccessTokenClaims } from './domain/access-token';
import { ExpiringCache } from './domain/expiring-cache';
import type { GlobalVersion } from './domain/refresh-token';
import type { RevocationNotice, RevocationSignal } from './domain/revocation-bus';
import { isSessionId } from './domain/token-codec';
import type { ResolvedOptions } from './options';

const GLOBAL_KEY = 'g';
const userKey = (userId: string) => `u:${userId}`;
const sessionKey = (sessionId: string) => `s:${sessionId}`;

type Dependencies = Pick<
  ResolvedOptions,
  'versions' | 'repository' | 'revocationBus' | 'revocationCache' | 'clock'
>;

/** The revocation state of one `RotationService` (one per service, sharing nothing). */
export class RevocationState {
  /** By key: `u:<user>` (minimum version), `g` (global version), `s:<session>` (live). */
  private readonly cache: ExpiringCache<unknown>;
  private unpublished = 0;

  constructor(private readonly dependencies: Dependencies) {
    this.cache = new ExpiringCache(dependencies.revocationCache.maxEntries, dependencies.clock);
    dependencies.revocationBus?.subscribe((signal) => this.forget(signal));
  }

  /** Notices that could not be published (other instances then waited for their cache to expire). */
  get unpublishedNotices(): number {
    return this.unpublished;
  }

  /**
   * Whether every revocation announced before now has reached this instance (see
   * `RevocationBus.sync`); false without a bus or when it cannot tell. Start it with the request's
   * first command and await it before reading versions.
   */
  async sync(): Promise<boolean> {
    try {
      return (await this.dependencies.revocationBus?.sync?.()) ?? false;
    } catch {
      return false;
    }
  }

  /** The user's minimum version and the global version, no older than the bound above. */
  versions(userId: string, synced: boolean): Promise<[number, GlobalVersion]> {
    const { versions } = this.dependencies;
    const maxAge = this.maxAge(synced);
    return Promise.all([
      this.cache.read(userKey(userId), () => versions.getUserMinVersion(userId), maxAge),
      this.cache.read(GLOBAL_KEY, () => versions.getGlobal(), maxAge),
    ]) as Promise<[number, GlobalVersion]>;
  }

  /** Whether the access token's session exists, is the token's user's, and is not revoked. */
  isSessionLive(claims: Pick<AccessTokenClaims, 'sub' | 'sid'>, synced: boolean): Promise<boolean> {
    if (!isSessionId(claims.sid)) return Promise.resolve(false);
    return this.cache.read(
      sessionKey(claims.sid),
      async () => {
        const record = await this.dependencies.repository.findBySessionId(claims.sid);
        return record !== null && record.revokedAt === null && record.userId === claims.sub;
      },
      this.maxAge(synced),
    ) as Promise<boolean>;
  }

  /** A revocation this instance made (already stored): drop the entry here, then tell the others. */
  async revoked(notice: RevocationNotice): Promise<void> {
    this.forget(notice);
    await this.announce(notice);
  }

  /** Drop the entry of a session this instance revoked, without telling anyone (nothing changed). */
  forgetSession(sessionId: string): void {
    this.cache.invalidate(sessionKey(sessionId));
  }

  private maxAge(synced: boolean): number {
    const { ttlMs, ttlWithBusMs } = this.dependencies.revocationCache;
    return synced ? ttlWithBusMs : ttlMs;
  }

  /** Drop what this instance cached about a revocation, its own or one announced on the bus. */
  private forget(signal: RevocationSignal): void {
    switch (signal.kind) {
      case 'session':
        this.cache.invalidate(sessionKey(signal.sessionId));
        break;
      case 'user':
        this.cache.invalidate(userKey(signal.userId));
        break;
      case 'global':
        this.cache.invalidate(GLOBAL_KEY);
        break;
      case 'resync':
        this.cache.clear();
        break;
    }
  }

  /**
   * Tell the other instances, before the caller answers (so a request that starts after the answer
   * meets no stale cache anywhere). The revocation itself is already stored: a bus failure is
   * counted, not thrown, and the others fall back to their cache lifetime.
   */
  private async announce(notice: RevocationNotice): Promise<void> {
    const bus = this.dependencies.revocationBus;
    if (!bus) return;
    try {
      await bus.publish(notice);
    } catch {
      this.unpublished += 1;
    }
  }
}
