import { ConflictError, NotFoundError } from '../../domain/errors';
import type { RefreshTokenRepository } from '../../domain/refresh-token-repository';
import {
  isExpired,
  supersededSlot,
  supersededWindow,
  systemClock,
  type Clock,
  type NewRefreshTokenRecord,
  type RefreshTokenRecord,
  type RevocationReason,
  type RotateInput,
  type BindDeviceInput,
  type SupersededGeneration,
  type Touch,
} from '../../domain/refresh-token';
import { bindingAfter, judgeBinding, type SessionBinding } from '../../domain/session-binding';

/** Options of {@link MemoryRefreshTokenRepository}. */
export interface MemoryRefreshTokenRepositoryOptions {
  /** Source of "now" for `updateLastUsed` without a date and for revocation times. Default: the system clock. */
  clock?: Clock | undefined;
}

function copyDate(date: Date): Date;
function copyDate(date: Date | null): Date | null;
function copyDate(date: Date | null): Date | null {
  return date === null ? null : new Date(date.getTime());
}

function copySuperseded(list: readonly SupersededGeneration[]): SupersededGeneration[] {
  return list.map((entry) => ({
    generation: entry.generation,
    at: copyDate(entry.at),
    tokenHash: entry.tokenHash,
  }));
}

/** A deep copy (not `structuredClone`: its Dates come from another realm under some runners). */
function copy(record: RefreshTokenRecord): RefreshTokenRecord {
  return {
    ...record,
    createdAt: copyDate(record.createdAt),
    rotatedAt: copyDate(record.rotatedAt),
    superseded: copySuperseded(record.superseded),
    lastUsedAt: copyDate(record.lastUsedAt),
    expiresAt: copyDate(record.expiresAt),
    absoluteExpiresAt: copyDate(record.absoluteExpiresAt),
    revokedAt: copyDate(record.revokedAt),
    client: { ...record.client },
    binding: copyBinding(record.binding),
  };
}

function copyBinding(binding: SessionBinding | null): SessionBinding | null {
  if (binding === null) return null;
  if (binding.method === 'dpop') return { ...binding };
  return { ...binding, jwk: { ...binding.jwk }, boundUntil: new Date(binding.boundUntil) };
}

/** The port's binding condition of `rotate` (`RotateInput.proofJkt`, `RotateInput.dbsc`). */
function bindingAdmits(record: RefreshTokenRecord, input: RotateInput): boolean {
  if (input.dbsc !== undefined)
    return record.binding?.method === 'dbsc' && record.binding.jkt === input.dbsc.jkt;
  const verdict = judgeBinding(
    record.binding,
    input.proofJkt === undefined ? undefined : { jkt: input.proofJkt },
    input.now,
  );
  return verdict === 'bind' || verdict === 'bearer' || verdict === 'match';
}

function isLive(record: RefreshTokenRecord): boolean {
  return record.revokedAt === null;
}

function isUnexpired(record: RefreshTokenRecord, now: Date): boolean {
  return (
    record.expiresAt.getTime() > now.getTime() && record.absoluteExpiresAt.getTime() > now.getTime()
  );
}

function isDeletable(record: RefreshTokenRecord, before: Date): boolean {
  const cutoff = before.getTime();
  return (
    record.expiresAt.getTime() <= cutoff ||
    record.absoluteExpiresAt.getTime() <= cutoff ||
    (record.revokedAt !== null && record.revokedAt.getTime() <= cutoff)
  );
}

function newestFirst(a: RefreshTokenRecord, b: RefreshTokenRecord): number {
  return b.createdAt.getTime() - a.createdAt.getTime() || (b.id < a.id ? -1 : b.id > a.id ? 1 : 0);
}

/**
 * The in-memory `RefreshTokenRepository`: a real implementation of the port (it passes the same
 * contract suite as the Mongoose adapter), for tests and the demo. Every operation runs without
 * yielding between its read and its write, so `rotate` is an atomic compare-and-set. State lives
 * in this process only: not for production with more than one instance.
 */
export class MemoryRefreshTokenRepository implements RefreshTokenRepository {
  private readonly byId = new Map<string, RefreshTokenRecord>();
  private readonly idBySession = new Map<string, string>();
  private readonly idByHash = new Map<string, string>();
  private readonly clock: Clock;

  constructor(options: MemoryRefreshTokenRepositoryOptions = {}) {
    this.clock = options.clock ?? systemClock;
  }

  /** Number of records held (revoked included). */
  get size(): number {
    return this.byId.size;
  }

  async save(input: NewRefreshTokenRecord): Promise<RefreshTokenRecord> {
    if (this.byId.has(input.id))
      throw new ConflictError(`a record with id ${input.id} already exists`);
    if (this.idBySession.has(input.sessionId))
      throw new ConflictError('a record with this sessionId already exists');
    if (this.idByHash.has(input.tokenHash))
      throw new ConflictError('a record with this tokenHash already exists');
    const record = copy({
      ...input,
      rotatedAt: input.rotatedAt ?? null,
      superseded: input.superseded ?? [],
      lastUsedAt: input.lastUsedAt ?? null,
      revokedAt: null,
      revokedReason: null,
      binding: input.binding ?? null,
    });
    this.byId.set(record.id, record);
    this.idBySession.set(record.sessionId, record.id);
    this.idByHash.set(record.tokenHash, record.id);
    return copy(record);
  }

  async findByTokenHash(hash: string): Promise<RefreshTokenRecord | null> {
    const record = this.lookup(this.idByHash.get(hash));
    return record && isLive(record) ? copy(record) : null;
  }

  async findById(id: string): Promise<RefreshTokenRecord | null> {
    const record = this.byId.get(id);
    return record ? copy(record) : null;
  }

  async findBySessionId(sessionId: string): Promise<RefreshTokenRecord | null> {
    const record = this.lookup(this.idBySession.get(sessionId));
    return record ? copy(record) : null;
  }

  async updateLastUsed(id: string, at?: Date): Promise<void> {
    const record = this.byId.get(id);
    if (!record) throw new NotFoundError(`no refresh token record with id ${id}`);
    record.lastUsedAt = new Date((at ?? this.clock.now()).getTime());
  }

  async delete(id: string): Promise<void> {
    const record = this.byId.get(id);
    if (!record) throw new NotFoundError(`no refresh token record with id ${id}`);
    this.byId.delete(id);
    this.idBySession.delete(record.sessionId);
    this.idByHash.delete(record.tokenHash);
  }

  async revokeBySession(
    sessionId: string,
    reason: RevocationReason,
    options: { at?: Date } = {},
  ): Promise<boolean> {
    const record = this.lookup(this.idBySession.get(sessionId));
    if (!record || !isLive(record)) return false;
    this.markRevoked(record, reason, options.at);
    return true;
  }

  async revokeAllForUser(
    userId: string,
    reason: RevocationReason = 'user_requested',
    options: { issuedBefore?: Date; at?: Date } = {},
  ): Promise<number> {
    const { issuedBefore } = options;
    let revoked = 0;
    for (const record of this.byId.values()) {
      if (record.userId !== userId || !isLive(record)) continue;
      if (issuedBefore && record.createdAt.getTime() >= issuedBefore.getTime()) continue;
      this.markRevoked(record, reason, options.at);
      revoked += 1;
    }
    return revoked;
  }

  async findByTokenVerification(
    token: string,
    verify: (token: string, tokenHash: string) => boolean | Promise<boolean>,
  ): Promise<RefreshTokenRecord | null> {
    for (const record of [...this.byId.values()]) {
      if (isLive(record) && (await verify(token, record.tokenHash))) {
        const current = this.byId.get(record.id);
        if (current && isLive(current)) return copy(current);
      }
    }
    return null;
  }

  async rotate(input: RotateInput): Promise<RefreshTokenRecord | null> {
    const record = this.lookup(this.idBySession.get(input.sessionId));
    if (
      !record ||
      !isLive(record) ||
      record.generation !== input.generation ||
      record.tokenHash !== input.tokenHash ||
      isExpired(record, input.now) ||
      !bindingAdmits(record, input)
    )
      return null;
    const holder = this.idByHash.get(input.nextTokenHash);
    if (holder !== undefined && holder !== record.id) {
      throw new ConflictError('another record already holds this tokenHash');
    }
    const at = input.now.getTime();
    this.idByHash.delete(record.tokenHash);
    record.generation = input.generation + 1;
    record.keyId = input.nextKeyId;
    record.tokenHash = input.nextTokenHash;
    record.sealed = input.nextSealed;
    record.rotatedAt = new Date(at);
    record.binding = bindingAfter(
      record.binding,
      input.proofJkt === undefined ? undefined : { jkt: input.proofJkt },
    );
    // Only a refresh by proof moves a DBSC session's bound lifetime.
    if (input.dbsc !== undefined && record.binding?.method === 'dbsc')
      record.binding.boundUntil = new Date(input.dbsc.boundUntil);
    const slot = supersededSlot(input.generation);
    record.superseded = supersededWindow(record.generation, [
      ...record.superseded.filter((entry) => supersededSlot(entry.generation) !== slot),
      { generation: input.generation, at: new Date(at), tokenHash: input.tokenHash },
    ]);
    record.expiresAt = new Date(
      Math.min(input.idleExpiresAt.getTime(), record.absoluteExpiresAt.getTime()),
    );
    if (record.lastUsedAt === null || record.lastUsedAt.getTime() < at)
      record.lastUsedAt = new Date(at);
    this.idByHash.set(record.tokenHash, record.id);
    return copy(record);
  }

  async bindDevice(input: BindDeviceInput): Promise<RefreshTokenRecord | null> {
    const record = this.lookup(this.idBySession.get(input.sessionId));
    if (
      !record ||
      !isLive(record) ||
      record.tokenHash !== input.tokenHash ||
      record.binding !== null ||
      isExpired(record, input.now)
    )
      return null;
    record.binding = copyBinding(input.binding);
    return copy(record);
  }

  async listActiveForUser(userId: string, now: Date): Promise<RefreshTokenRecord[]> {
    return [...this.byId.values()]
      .filter((record) => record.userId === userId && isLive(record) && isUnexpired(record, now))
      .sort(newestFirst)
      .map(copy);
  }

  async touchMany(touches: readonly Touch[]): Promise<number> {
    const changed = new Set<RefreshTokenRecord>();
    for (const touch of touches) {
      const record = this.lookup(this.idBySession.get(touch.sessionId));
      if (!record) continue;
      if (record.lastUsedAt !== null && record.lastUsedAt.getTime() >= touch.at.getTime()) continue;
      record.lastUsedAt = new Date(touch.at.getTime());
      changed.add(record);
    }
    return changed.size;
  }

  async deleteExpired(options: { before: Date; limit: number }): Promise<number> {
    if (options.limit <= 0) return 0;
    const doomed: RefreshTokenRecord[] = [];
    for (const record of this.byId.values()) {
      if (doomed.length >= options.limit) break;
      if (isDeletable(record, options.before)) doomed.push(record);
    }
    for (const record of doomed) {
      this.byId.delete(record.id);
      this.idBySession.delete(record.sessionId);
      this.idByHash.delete(record.tokenHash);
    }
    return doomed.length;
  }

  private lookup(id: string | undefined): RefreshTokenRecord | undefined {
    return id === undefined ? undefined : this.byId.get(id);
  }

  private markRevoked(
    record: RefreshTokenRecord,
    reason: RevocationReason,
    at: Date | undefined,
  ): void {
    record.revokedAt = new Date((at ?? this.clock.now()).getTime());
    record.revokedReason = reason;
  }
}
