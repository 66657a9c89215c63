import type { Connection, Model, mongo } from 'mongoose';
import { NotFoundError, OptionsError } from '../../domain/errors';
import type { RefreshTokenRepository } from '../../domain/refresh-token-repository';
import {
  supersededSlot,
  supersededWindow,
  systemClock,
  type ClientInfo,
  type Clock,
  type NewRefreshTokenRecord,
  type RefreshTokenRecord,
  type RevocationReason,
  type RotateInput,
  type BindDeviceInput,
  type Touch,
} from '../../domain/refresh-token';
import type { SessionBinding } from '../../domain/session-binding';
import { mapStoreErrors } from './errors';
import { GuardedWrites } from './revocation-guard';
import {
  createRefreshTokenSchema,
  createRevocationNoteSchema,
  driverCollection,
  modelOn,
  type RefreshTokenDocument,
  type RevocationNoteDocument,
} from './schema';
import {
  AtomicWrites,
  serverNeedsRevocationGuard,
  type RecordFilter,
  type RecordUpdate,
  type RevocationGuardMode,
  type WriteStrategy,
} from './write-strategy';

/** Options of {@link MongooseRefreshTokenRepository}. */
export interface MongooseRefreshTokenRepositoryOptions {
  /** Collection of the session records. Default `refresh_tokens`. */
  collectionName?: string | undefined;
  /**
   * Collection of the revocation notes (used only when the revocation guard is on).
   * Default `<collectionName>_revocations`.
   */
  revocationsCollectionName?: string | undefined;
  /**
   * MongoDB only: make `expiresAt` a TTL index so the server deletes records this many seconds
   * after their idle expiry. Default: off (the worker's cleanup job deletes in bounded batches).
   * FerretDB rejects TTL indexes: `ensureIndexes()` then fails with `OptionsError`. Changing this
   * on an existing collection needs the `expiresAt_1` index dropped first.
   */
  ttlAfterExpirySeconds?: number | undefined;
  /**
   * Protect revocations from racing writes on servers whose updates are read-then-write
   * (see `revocation-guard.ts`). `'auto'` (default): on for FerretDB v1 (and a FerretDB whose
   * version it cannot read), off for MongoDB and FerretDB 2.x, decided once from `buildInfo`.
   * `'on'` for any other MongoDB-compatible server without atomic single-document updates;
   * `'off'` skips the `buildInfo` call.
   */
  revocationGuard?: RevocationGuardMode | undefined;
  /** Source of "now" for defaults (`updateLastUsed`, revocation times). Default: the system clock. */
  clock?: Clock | undefined;
}

const DEFAULT_COLLECTION = 'refresh_tokens';
const CURSOR_BATCH_SIZE = 100;

function copyClient(client: ClientInfo | undefined): ClientInfo {
  const copy: ClientInfo = {};
  if (client?.userAgent != null) copy.userAgent = client.userAgent;
  if (client?.ip != null) copy.ip = client.ip;
  if (client?.label != null) copy.label = client.label;
  return copy;
}

/**
 * The stored supersede ring. A record stored without the array (written by hand or by another
 * tool) gets an object from the first `$set superseded.<slot>`: read its values too.
 */
function ringOf(doc: RefreshTokenDocument): RefreshTokenDocument['superseded'] {
  const ring: unknown = doc.superseded ?? [];
  return Array.isArray(ring) ? ring : Object.values(ring as object);
}

function toRecord(doc: RefreshTokenDocument): RefreshTokenRecord {
  return {
    id: doc.id,
    userId: doc.userId,
    sessionId: doc._id,
    generation: doc.generation,
    keyId: doc.keyId,
    tokenHash: doc.tokenHash,
    sealed: doc.sealed,
    tokenVersion: doc.tokenVersion,
    globalVersionAtIssuance: doc.globalVersionAtIssuance,
    createdAt: doc.createdAt,
    rotatedAt: doc.rotatedAt ?? null,
    superseded: supersededWindow(doc.generation, ringOf(doc)),
    lastUsedAt: doc.lastUsedAt ?? null,
    // The hot path slides the idle expiry without reading the absolute one: clamp here.
    expiresAt:
      doc.expiresAt.getTime() <= doc.absoluteExpiresAt.getTime()
        ? doc.expiresAt
        : doc.absoluteExpiresAt,
    absoluteExpiresAt: doc.absoluteExpiresAt,
    revokedAt: doc.revokedAt ?? null,
    revokedReason: doc.revokedReason ?? null,
    client: copyClient(doc.client),
    binding: bindingOf(doc.binding),
  };
}

function bindingOf(stored: RefreshTokenDocument['binding'] | undefined): SessionBinding | null {
  if (!stored) return null;
  if (stored.method === 'dbsc')
    return {
      method: 'dbsc',
      jkt: stored.jkt,
      jwk: { ...stored.jwk },
      boundUntil: new Date(stored.boundUntil),
    };
  return { method: 'dpop', jkt: stored.jkt };
}

function toDocument(input: NewRefreshTokenRecord): RefreshTokenDocument {
  const { sessionId, client, ...fields } = input;
  return {
    ...fields,
    _id: sessionId,
    rotatedAt: input.rotatedAt ?? null,
    superseded: (input.superseded ?? []).map((entry) => ({ ...entry })),
    lastUsedAt: input.lastUsedAt ?? null,
    revokedAt: null,
    revokedReason: null,
    client: copyClient(client),
    binding: input.binding ?? null,
  };
}

/**
 * The hot path's filter: only the current, live, unexpired token of the session matches, and only
 * if the session is unbound or bound to the key the request proved (`binding: null` also matches
 * a record stored before the field existed).
 */
function rotateFilter(input: RotateInput): RecordFilter {
  const unbound: RecordFilter = { binding: null };
  return {
    _id: input.sessionId,
    generation: input.generation,
    tokenHash: input.tokenHash,
    revokedAt: null,
    expiresAt: { $gt: input.now },
    absoluteExpiresAt: { $gt: input.now },
    ...bindingFilter(input, unbound),
  };
}

/** `RotateInput.proofJkt` and `RotateInput.dbsc` as a filter (see the port). */
function bindingFilter(input: RotateInput, unbound: RecordFilter): RecordFilter {
  if (input.dbsc !== undefined) return { 'binding.method': 'dbsc', 'binding.jkt': input.dbsc.jkt };
  if (input.proofJkt !== undefined)
    return { $or: [unbound, { 'binding.method': 'dpop', 'binding.jkt': input.proofJkt }] };
  // No proof: a bearer session, or a device-bound one inside its bound lifetime.
  return { $or: [unbound, { 'binding.method': 'dbsc', 'binding.boundUntil': { $gt: input.now } }] };
}

/**
 * The hot path's update: plain operators every backend applies, nothing computed from the record.
 * The next token's hash and seal and the superseded entry (with the presented token's hash, which
 * the filter has just proved is the stored one) land in the same `$set`: one command.
 */
function rotateUpdate(input: RotateInput): RecordUpdate {
  return {
    $set: {
      generation: input.generation + 1,
      keyId: input.nextKeyId,
      tokenHash: input.nextTokenHash,
      sealed: input.nextSealed,
      rotatedAt: input.now,
      [`superseded.${supersededSlot(input.generation)}`]: {
        generation: input.generation,
        at: input.now,
        tokenHash: input.tokenHash,
      },
      expiresAt: input.idleExpiresAt,
      // The filter let only an unbound record or one bound to this key through: setting it again
      // is a no-op for the second, and binds the first.
      ...(input.proofJkt === undefined ? {} : { binding: { method: 'dpop', jkt: input.proofJkt } }),
      // Only a refresh by proof moves a DBSC session's bound lifetime.
      ...(input.dbsc === undefined ? {} : { 'binding.boundUntil': input.dbsc.boundUntil }),
    },
    $max: { lastUsedAt: input.now },
  };
}

function nonEmptyName(value: unknown, option: string): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new OptionsError(
      `${option} must be a non-empty collection name; got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function resolveOptions(options: MongooseRefreshTokenRepositoryOptions) {
  const collectionName = nonEmptyName(
    options.collectionName ?? DEFAULT_COLLECTION,
    'collectionName',
  );
  const revocationsCollectionName = nonEmptyName(
    options.revocationsCollectionName ?? `${collectionName}_revocations`,
    'revocationsCollectionName',
  );
  const guard = options.revocationGuard ?? 'auto';
  if (guard !== 'auto' && guard !== 'on' && guard !== 'off') {
    throw new OptionsError(
      `revocationGuard must be 'auto', 'on' or 'off'; got ${JSON.stringify(guard)}`,
    );
  }
  const ttl = options.ttlAfterExpirySeconds;
  if (ttl !== undefined && !(Number.isInteger(ttl) && ttl >= 0)) {
    throw new OptionsError(
      `ttlAfterExpirySeconds must be a whole number of seconds >= 0; got ${String(ttl)}`,
    );
  }
  return {
    collectionName,
    revocationsCollectionName,
    guard,
    ttl,
    clock: options.clock ?? systemClock,
  };
}

/** Whether the server refused an index option it does not implement (FerretDB: TTL, partial). */
function isIndexOptionRefused(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 238 || code === 67; // NotImplemented, CannotCreateIndex
}

function isIndexConflict(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 85 || code === 86; // IndexOptionsConflict, IndexKeySpecsConflict
}

/** The latest touch per session: one write per record, and `changed` counts records. */
function latestPerSession(touches: readonly Touch[]): Map<string, Date> {
  const latest = new Map<string, Date>();
  for (const touch of touches) {
    const seen = latest.get(touch.sessionId);
    if (!seen || touch.at.getTime() > seen.getTime()) latest.set(touch.sessionId, touch.at);
  }
  return latest;
}

/**
 * The MongoDB `RefreshTokenRepository` (docs/architecture.md, "Ports" and "The token"), on the
 * caller's Mongoose connection: it never connects, closes or changes global settings, and reuses
 * its model if one is already registered on that connection (under
 * `refresh-rotation:<collectionName>`).
 *
 * One document per session in `refresh_tokens`, `_id` = the session id (the hot path is one
 * find-and-modify on it), `id` = the record's UUIDv7. Find-and-modify never uses a projection
 * (FerretDB refuses them). Writes that a concurrent revocation could change go through one
 * internal seam (write-strategy.ts): plain atomic commands on MongoDB, the revocation guard on
 * FerretDB v1. Call {@link ensureIndexes} at start-up (app and worker).
 *
 * Failures: `StoreUnavailableError` when the server cannot be reached. How fast that happens is set
 * on the connection: use e.g. `serverSelectionTimeoutMS: 2000` (default 30 s!), `connectTimeoutMS:
 * 2000`, `socketTimeoutMS: 10000`; before the initial connection Mongoose buffers operations for
 * the `bufferTimeoutMS` createConnection option (default 10 s). `ConflictError` on a duplicate
 * id, sessionId or tokenHash.
 */
export class MongooseRefreshTokenRepository implements RefreshTokenRepository {
  private readonly records: Model<RefreshTokenDocument>;
  private readonly notes: Model<RevocationNoteDocument>;
  private readonly clock: Clock;
  private readonly guardMode: RevocationGuardMode;
  private writeStrategy: WriteStrategy | undefined;
  private strategyDecision: Promise<WriteStrategy> | undefined;

  constructor(
    private readonly connection: Connection,
    options: MongooseRefreshTokenRepositoryOptions = {},
  ) {
    const resolved = resolveOptions(options);
    this.clock = resolved.clock;
    this.guardMode = resolved.guard;
    this.records = modelOn(connection, resolved.collectionName, () =>
      createRefreshTokenSchema({ ttlAfterExpirySeconds: resolved.ttl }),
    );
    this.notes = modelOn(
      connection,
      resolved.revocationsCollectionName,
      createRevocationNoteSchema,
    );
  }

  /**
   * Create the indexes (idempotent; call at start-up, from the app and the worker). Rejects with
   * `OptionsError` when the server refuses the TTL index (FerretDB) or an existing index has other
   * options (e.g. TTL switched on or off: drop `expiresAt_1` first).
   */
  async ensureIndexes(): Promise<void> {
    await mapStoreErrors('ensureIndexes', async () => {
      try {
        await this.records.createIndexes();
      } catch (error) {
        if (isIndexOptionRefused(error)) {
          throw new OptionsError(
            `this server refuses the TTL index (${(error as Error).message}); leave ttlAfterExpirySeconds unset and run the cleanup job`,
          );
        }
        if (isIndexConflict(error)) {
          throw new OptionsError(
            `an existing index of ${this.records.collection.collectionName} has other options (${(error as Error).message}); drop it (e.g. expiresAt_1 after changing ttlAfterExpirySeconds) and retry`,
          );
        }
        throw error;
      }
      await (await this.writes()).ensureIndexes();
    });
  }

  async save(input: NewRefreshTokenRecord): Promise<RefreshTokenRecord> {
    return mapStoreErrors('save', async () => {
      const doc = toDocument(input);
      await this.records.create(doc);
      return toRecord(doc);
    });
  }

  async findByTokenHash(hash: string): Promise<RefreshTokenRecord | null> {
    return this.findOne('findByTokenHash', { tokenHash: hash, revokedAt: null });
  }

  async findById(id: string): Promise<RefreshTokenRecord | null> {
    return this.findOne('findById', { id });
  }

  async findBySessionId(sessionId: string): Promise<RefreshTokenRecord | null> {
    return this.findOne('findBySessionId', { _id: sessionId });
  }

  async updateLastUsed(id: string, at?: Date): Promise<void> {
    await mapStoreErrors('updateLastUsed', async () => {
      const found = await (await this.writes()).setLastUsed(id, at ?? this.clock.now());
      if (!found) throw new NotFoundError(`no refresh token record with id ${id}`);
    });
  }

  async delete(id: string): Promise<void> {
    await mapStoreErrors('delete', async () => {
      const { deletedCount } = await driverCollection(this.records).deleteOne({ id });
      if (deletedCount === 0) throw new NotFoundError(`no refresh token record with id ${id}`);
    });
  }

  async revokeBySession(
    sessionId: string,
    reason: RevocationReason,
    options: { at?: Date } = {},
  ): Promise<boolean> {
    return mapStoreErrors('revokeBySession', async () =>
      (await this.writes()).revokeSession(sessionId, reason, options.at ?? this.clock.now()),
    );
  }

  async revokeAllForUser(
    userId: string,
    reason: RevocationReason = 'user_requested',
    options: { issuedBefore?: Date; at?: Date } = {},
  ): Promise<number> {
    return mapStoreErrors('revokeAllForUser', async () => {
      const filter: RecordFilter = {
        userId,
        revokedAt: null,
        ...(options.issuedBefore ? { createdAt: { $lt: options.issuedBefore } } : {}),
      };
      return (await this.writes()).revokeUser(userId, filter, {
        issuedBefore: options.issuedBefore ?? null,
        reason,
        at: options.at ?? this.clock.now(),
      });
    });
  }

  async findByTokenVerification(
    token: string,
    verify: (token: string, tokenHash: string) => boolean | Promise<boolean>,
  ): Promise<RefreshTokenRecord | null> {
    return mapStoreErrors('findByTokenVerification', async () => {
      const cursor = this.records
        .find({ revokedAt: null })
        .batchSize(CURSOR_BATCH_SIZE)
        .lean<RefreshTokenDocument>()
        .cursor();
      try {
        for await (const doc of cursor) {
          if (await verify(token, doc.tokenHash)) return toRecord(doc);
        }
        return null;
      } finally {
        await cursor.close();
      }
    });
  }

  async rotate(input: RotateInput): Promise<RefreshTokenRecord | null> {
    return mapStoreErrors('rotate', async () => {
      const writes = this.writeStrategy ?? (await this.writes());
      const rotated = await writes.rotate(rotateFilter(input), rotateUpdate(input));
      return rotated ? toRecord(rotated) : null;
    });
  }

  async bindDevice(input: BindDeviceInput): Promise<RefreshTokenRecord | null> {
    return mapStoreErrors('bindDevice', async () => {
      const writes = this.writeStrategy ?? (await this.writes());
      const bound = await writes.rotate(
        {
          _id: input.sessionId,
          tokenHash: input.tokenHash,
          binding: null,
          revokedAt: null,
          expiresAt: { $gt: input.now },
          absoluteExpiresAt: { $gt: input.now },
        },
        { $set: { binding: { ...input.binding, jwk: { ...input.binding.jwk } } } },
      );
      return bound ? toRecord(bound) : null;
    });
  }

  async listActiveForUser(userId: string, now: Date): Promise<RefreshTokenRecord[]> {
    return mapStoreErrors('listActiveForUser', async () => {
      const docs = await this.records
        .find({
          userId,
          revokedAt: null,
          expiresAt: { $gt: now },
          absoluteExpiresAt: { $gt: now },
        })
        .sort({ createdAt: -1, _id: -1 })
        .lean<RefreshTokenDocument[]>();
      return docs.map(toRecord);
    });
  }

  async touchMany(touches: readonly Touch[]): Promise<number> {
    if (touches.length === 0) return 0;
    return mapStoreErrors('touchMany', async () => {
      const latest = latestPerSession(touches);
      const batch = [...latest].map(([sessionId, at]) => ({ sessionId, at }));
      return (await this.writes()).touch(batch);
    });
  }

  async deleteExpired(options: { before: Date; limit: number }): Promise<number> {
    const limit = Math.floor(options.limit);
    if (!(limit > 0)) return 0;
    return mapStoreErrors('deleteExpired', async () => {
      const { before } = options;
      const expired = {
        $or: [
          { expiresAt: { $lte: before } },
          { absoluteExpiresAt: { $lte: before } },
          { revokedAt: { $lte: before } },
        ],
      };
      const doomed = await this.records
        .find(expired)
        .limit(limit)
        .select({ _id: 1 })
        .lean<Pick<RefreshTokenDocument, '_id'>[]>();
      await (await this.writes()).prune(this.clock.now(), limit);
      if (doomed.length === 0) return 0;
      const { deletedCount } = await this.records.deleteMany({
        _id: { $in: doomed.map((doc) => doc._id) },
        ...expired,
      });
      return deletedCount;
    });
  }

  private async findOne(
    operation: string,
    filter: mongo.Filter<RefreshTokenDocument>,
  ): Promise<RefreshTokenRecord | null> {
    return mapStoreErrors(operation, async () => {
      const doc = await driverCollection(this.records).findOne(filter);
      return doc ? toRecord(doc) : null;
    });
  }

  /** The write strategy for this server; decided once (retried after a failure). */
  private writes(): Promise<WriteStrategy> {
    if (this.writeStrategy) return Promise.resolve(this.writeStrategy);
    const decide = async () => {
      const guarded =
        this.guardMode === 'on' ||
        (this.guardMode === 'auto' && (await serverNeedsRevocationGuard(this.connection)));
      this.writeStrategy = guarded
        ? new GuardedWrites(this.records, this.notes, this.clock)
        : new AtomicWrites(this.records);
      return this.writeStrategy;
    };
    this.strategyDecision ??= decide().catch((error: unknown) => {
      this.strategyDecision = undefined;
      throw error;
    });
    return this.strategyDecision;
  }
}
