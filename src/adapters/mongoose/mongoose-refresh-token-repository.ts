import type { Connection, Model, mongo } from 'mongoose';
import { NotFoundError, OptionsError } from '../../domain/errors';
import type { RefreshTokenRepository } from '../../domain/refresh-token-repository';
import {
  systemClock,
  type AdvanceInput,
  type ClientInfo,
  type Clock,
  type NewRefreshTokenRecord,
  type RefreshTokenRecord,
  type RevocationReason,
  type Touch,
} from '../../domain/refresh-token';
import { mapStoreErrors } from './errors';
import {
  NOTE_RETENTION_MS,
  RevocationGuard,
  isFerretDb,
  type RevocationGuardMode,
} from './revocation-guard';
import {
  createRefreshTokenSchema,
  createRevocationNoteSchema,
  driverCollection,
  modelOn,
  type RefreshTokenDocument,
  type RevocationNoteDocument,
} from './schema';

/** Largest update command `touchMany` sends (see the FerretDB note there). */
const TOUCH_WRITE_CHUNK = 50;

/** Options of {@link MongooseRefreshTokenRepository}. */
export interface MongooseRefreshTokenRepositoryOptions {
  /** Collection of the session records. Default `refresh_tokens`. */
  collectionName?: string;
  /**
   * Collection of the revocation notes (used only when the revocation guard is on).
   * Default `<collectionName>_revocations`.
   */
  revocationsCollectionName?: string;
  /**
   * MongoDB only: make `expiresAt` a TTL index so the server deletes records this many seconds
   * after their idle expiry. Default: off (the worker's cleanup job deletes in bounded batches).
   * FerretDB rejects TTL indexes: `ensureIndexes()` then fails with `OptionsError`. Changing this
   * on an existing collection needs the `expiresAt_1` index dropped first.
   */
  ttlAfterExpirySeconds?: number;
  /**
   * Protect revocations from racing writes on servers whose updates are read-then-write
   * (see `revocation-guard.ts`). `'auto'` (default): on for FerretDB, off for MongoDB, decided
   * once from `buildInfo`. `'on'` for any other MongoDB-compatible server without atomic
   * single-document updates.
   */
  revocationGuard?: RevocationGuardMode;
  /** Source of "now" for defaults (`updateLastUsed`, revocation times). Default: the system clock. */
  clock?: Clock;
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

function toRecord(doc: RefreshTokenDocument): RefreshTokenRecord {
  return {
    id: doc._id,
    userId: doc.userId,
    sessionId: doc.sessionId,
    generation: doc.generation,
    keyId: doc.keyId,
    tokenHash: doc.tokenHash,
    salt: doc.salt,
    tokenVersion: doc.tokenVersion,
    globalVersionAtIssuance: doc.globalVersionAtIssuance,
    createdAt: doc.createdAt,
    rotatedAt: doc.rotatedAt ?? null,
    superseded: (doc.superseded ?? []).map((entry) => ({
      generation: entry.generation,
      at: entry.at,
    })),
    lastUsedAt: doc.lastUsedAt ?? null,
    expiresAt: doc.expiresAt,
    absoluteExpiresAt: doc.absoluteExpiresAt,
    revokedAt: doc.revokedAt ?? null,
    revokedReason: doc.revokedReason ?? null,
    client: copyClient(doc.client),
  };
}

function toDocument(input: NewRefreshTokenRecord): RefreshTokenDocument {
  const { id, client, ...fields } = input;
  return {
    ...fields,
    _id: id,
    rotatedAt: input.rotatedAt ?? null,
    superseded: input.superseded ?? [],
    lastUsedAt: input.lastUsedAt ?? null,
    revokedAt: null,
    revokedReason: null,
    client: copyClient(client),
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
 * The MongoDB `RefreshTokenRepository` (DESIGN §1–2), on the caller's Mongoose connection: it
 * never connects, closes or changes global settings, and reuses its model if one is already
 * registered on that connection (under `refresh-rotation:<collectionName>`).
 *
 * One document per session in `refresh_tokens`, `_id` = the record's UUIDv7 id. Reads are `lean()`;
 * find-and-modify never uses a projection (FerretDB refuses them). Call {@link ensureIndexes} at
 * start-up (app and worker).
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
  private guardDecision: Promise<RevocationGuard | null> | undefined;

  constructor(
    private readonly connection: Connection,
    options: MongooseRefreshTokenRepositoryOptions = {},
  ) {
    const resolved = resolveOptions(options);
    this.clock = resolved.clock;
    this.guardMode = resolved.guard;
    this.records = modelOn(connection, resolved.collectionName, () =>
      createRefreshTokenSchema(
        resolved.ttl === undefined ? {} : { ttlAfterExpirySeconds: resolved.ttl },
      ),
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
      if (await this.guard()) await this.notes.createIndexes();
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
    return this.findOne('findById', { _id: id });
  }

  async findBySessionId(sessionId: string): Promise<RefreshTokenRecord | null> {
    return this.findOne('findBySessionId', { sessionId });
  }

  async updateLastUsed(id: string, at?: Date): Promise<void> {
    await mapStoreErrors('updateLastUsed', async () => {
      const updated = await this.records
        .findOneAndUpdate(
          { _id: id },
          { $set: { lastUsedAt: at ?? this.clock.now() } },
          { returnDocument: 'after' },
        )
        .lean<RefreshTokenDocument>();
      if (!updated) throw new NotFoundError(`no refresh token record with id ${id}`);
      await (await this.guard())?.reassert([updated]);
    });
  }

  async delete(id: string): Promise<void> {
    await mapStoreErrors('delete', async () => {
      const { deletedCount } = await this.records.deleteOne({ _id: id });
      if (deletedCount === 0) throw new NotFoundError(`no refresh token record with id ${id}`);
    });
  }

  async revokeBySession(
    sessionId: string,
    reason: RevocationReason,
    options: { at?: Date } = {},
  ): Promise<boolean> {
    return mapStoreErrors('revokeBySession', async () => {
      const at = options.at ?? this.clock.now();
      const guard = await this.guard();
      if (!guard) {
        const { modifiedCount } = await this.records.updateOne(
          { sessionId, revokedAt: null },
          { $set: { revokedAt: at, revokedReason: reason } },
        );
        return modifiedCount === 1;
      }
      const record = await this.records.findOne({ sessionId }).lean<RefreshTokenDocument>();
      if (!record || record.revokedAt !== null) return false;
      const { note, written } = await guard.noteSession(sessionId, {
        at,
        reason,
        writtenAt: this.clock.now(),
      });
      await guard.enforce(record._id, note);
      return written;
    });
  }

  async revokeAllForUser(
    userId: string,
    reason: RevocationReason = 'user_requested',
    options: { issuedBefore?: Date; at?: Date } = {},
  ): Promise<number> {
    return mapStoreErrors('revokeAllForUser', async () => {
      const at = options.at ?? this.clock.now();
      const filter = {
        userId,
        revokedAt: null,
        ...(options.issuedBefore ? { createdAt: { $lt: options.issuedBefore } } : {}),
      };
      const update = { $set: { revokedAt: at, revokedReason: reason } };
      const guard = await this.guard();
      if (guard) {
        await guard.noteUser(userId, {
          issuedBefore: options.issuedBefore ?? null,
          at,
          reason,
          writtenAt: this.clock.now(),
        });
      }
      const { modifiedCount } = await this.records.updateMany(filter, update);
      if (guard) {
        const stillLive = await this.records.find(filter).lean<RefreshTokenDocument[]>();
        for (const record of stillLive) await guard.enforce(record._id, { at, reason });
      }
      return modifiedCount;
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

  async advance(input: AdvanceInput): Promise<RefreshTokenRecord | null> {
    return mapStoreErrors('advance', async () => {
      const advanced = await driverCollection(this.records).findOneAndUpdate(
        { _id: input.id, generation: input.fromGeneration, revokedAt: null },
        {
          $set: {
            generation: input.fromGeneration + 1,
            keyId: input.keyId,
            tokenHash: input.tokenHash,
            rotatedAt: input.rotatedAt,
            // The whole bounded list, computed by the caller from the record it read: FerretDB v1
            // accepts $push with $slice but ignores the slice, so the list would grow forever.
            superseded: input.superseded,
            expiresAt: input.expiresAt,
            lastUsedAt: input.lastUsedAt,
          },
        },
        { returnDocument: 'after' },
      );
      if (!advanced) return null;
      const guard = await this.guard();
      if (guard && (await guard.reassert([advanced])).size > 0) return null;
      return toRecord(advanced);
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
      const updates = [...latest].map(([sessionId, at]) => ({
        updateOne: { filter: { sessionId }, update: { $max: { lastUsedAt: at } } },
      }));
      let modified = 0;
      // FerretDB v1 holds one SQLite connection per statement until the command ends and hangs for
      // good at about 100 statements in one update command, so write in commands of at most 50.
      for (let start = 0; start < updates.length; start += TOUCH_WRITE_CHUNK) {
        const chunk = updates.slice(start, start + TOUCH_WRITE_CHUNK);
        modified += (await this.records.bulkWrite(chunk, { ordered: false })).modifiedCount;
      }
      await (await this.guard())?.reassertSessions([...latest.keys()]);
      return modified;
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
      const guard = await this.guard();
      if (guard) await guard.prune(new Date(this.clock.now().getTime() - NOTE_RETENTION_MS), limit);
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

  /** The revocation guard if it is on for this server; decided once (retried after a failure). */
  private guard(): Promise<RevocationGuard | null> {
    if (this.guardMode === 'off') return Promise.resolve(null);
    const decide = async () => {
      const on = this.guardMode === 'on' || (await isFerretDb(this.connection));
      return on ? new RevocationGuard(this.records, this.notes) : null;
    };
    this.guardDecision ??= decide().catch((error: unknown) => {
      this.guardDecision = undefined;
      throw error;
    });
    return this.guardDecision;
  }
}
