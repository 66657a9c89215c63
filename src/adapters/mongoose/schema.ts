/**
 * Schemas of the three collections the Mongoose adapters use, and how their models are obtained
 * from the caller's connection. Indexes are declared on the schemas and created only by
 * `ensureIndexes()` (`autoIndex` and `autoCreate` are off: nothing happens behind the app's back).
 */
import { Schema, type Connection, type Model, type mongo } from 'mongoose';
import type { ClientInfo, RefreshTokenRecord } from '../../domain/refresh-token';

/**
 * A session record as stored: keyed by its session id (`_id`), so the hot path is a primary-key
 * operation on every backend and `_id` is the natural shard key; the record's UUIDv7 `id` has a
 * unique index of its own (`findById`).
 */
export interface RefreshTokenDocument extends Omit<
  RefreshTokenRecord,
  'sessionId' | 'client' | 'superseded'
> {
  /** The session id. */
  _id: string;
  /**
   * Supersede entries (time and token hash) as a ring: generation g in slot `g % SUPERSEDED_KEPT`
   * (one `$set` per rotation, no read). Slots never written yet may be null.
   */
  superseded: (RefreshTokenRecord['superseded'][number] | null)[];
  /** Absent when the client told us nothing (Mongoose drops empty objects). */
  client?: ClientInfo | undefined;
}

/** Options of {@link createRefreshTokenSchema}. */
export interface RefreshTokenSchemaOptions {
  /**
   * Declare the `expiresAt` index as a MongoDB TTL index: the server then deletes a record this
   * many seconds after its idle expiry (which never passes its absolute expiry). Off by default:
   * the cleanup job (`deleteExpired`) does the same in bounded batches on every backend, and
   * FerretDB rejects TTL indexes. Revoked records are still removed by the cleanup job. The hot
   * path sets `expiresAt` to now + idle TTL without reading the record, so near the end of a
   * session it may lie past `absoluteExpiresAt` (the adapter clamps it when reading, and refresh
   * checks both); the TTL index then deletes such a record up to one idle TTL late.
   */
  ttlAfterExpirySeconds?: number | undefined;
}

const SCHEMA_DEFAULTS = {
  versionKey: false,
  autoIndex: false,
  autoCreate: false,
  strict: true,
  minimize: true,
  // The record has a field named `id` (its UUIDv7): no Mongoose virtual of that name over it.
  id: false,
} as const;

/**
 * The schema of `refresh_tokens`, one document per session (docs/architecture.md, "The token"),
 * with its indexes: `_id` is the session id (the hot path's key); unique `id` (`findById`) and
 * `tokenHash` (`findByTokenHash`), `userId + createdAt` (sessions page, revoke-all with
 * `issuedBefore`), and `expiresAt`, `absoluteExpiresAt`, `revokedAt` (the three branches of
 * `deleteExpired`).
 */
export function createRefreshTokenSchema(
  options: RefreshTokenSchemaOptions = {},
): Schema<RefreshTokenDocument> {
  const schema = new Schema<RefreshTokenDocument>(
    {
      _id: { type: String, required: true },
      id: { type: String, required: true },
      userId: { type: String, required: true },
      generation: { type: Number, required: true, min: 0 },
      keyId: { type: Number, required: true },
      tokenHash: { type: String, required: true },
      sealed: { type: String, required: true },
      tokenVersion: { type: Number, required: true },
      globalVersionAtIssuance: { type: Number, required: true },
      createdAt: { type: Date, required: true },
      rotatedAt: { type: Date, default: null },
      superseded: {
        type: [
          {
            _id: false,
            generation: { type: Number, required: true },
            at: { type: Date, required: true },
            tokenHash: { type: String, required: true },
          },
        ],
        default: [],
      },
      lastUsedAt: { type: Date, default: null },
      expiresAt: { type: Date, required: true },
      absoluteExpiresAt: { type: Date, required: true },
      revokedAt: { type: Date, default: null },
      revokedReason: { type: String, default: null },
      client: { userAgent: String, ip: String, label: String },
      // Null for a bearer session; set once by the rotation (or login) that first carries a proof.
      binding: {
        type: new Schema(
          {
            method: { type: String, required: true },
            jkt: { type: String, required: true },
            // DBSC only: the public key (a later proof does not carry it) and the bound lifetime.
            jwk: { type: Schema.Types.Mixed, default: undefined },
            boundUntil: { type: Date, default: undefined },
          },
          { _id: false },
        ),
        default: null,
      },
    },
    SCHEMA_DEFAULTS,
  );
  schema.index({ id: 1 }, { unique: true });
  schema.index({ tokenHash: 1 }, { unique: true });
  schema.index({ userId: 1, createdAt: -1 });
  if (options.ttlAfterExpirySeconds === undefined) {
    schema.index({ expiresAt: 1 });
  } else {
    schema.index({ expiresAt: 1 }, { expireAfterSeconds: options.ttlAfterExpirySeconds });
  }
  schema.index({ absoluteExpiresAt: 1 });
  schema.index({ revokedAt: 1 });
  return schema;
}

/**
 * A revocation noted before it is applied, so that a write racing it on a backend whose
 * find-and-modify is read-then-write (FerretDB v1) can put it back (see `revocation-guard.ts`).
 * `_id` is `s:<sessionId>` for a session, `u:<uuid>` for a user-wide revocation.
 */
export interface RevocationNoteDocument {
  _id: string;
  sessionId: string | null;
  userId: string | null;
  /** User-wide notes: only records created strictly before this; null = all. */
  issuedBefore: Date | null;
  at: Date;
  reason: string;
  /** When the note was written (by the repository's clock); notes are pruned some time after. */
  writtenAt: Date;
}

export function createRevocationNoteSchema(): Schema<RevocationNoteDocument> {
  const schema = new Schema<RevocationNoteDocument>(
    {
      _id: { type: String, required: true },
      sessionId: { type: String, default: null },
      userId: { type: String, default: null },
      issuedBefore: { type: Date, default: null },
      at: { type: Date, required: true },
      reason: { type: String, required: true },
      writtenAt: { type: Date, required: true },
    },
    SCHEMA_DEFAULTS,
  );
  schema.index({ userId: 1 });
  schema.index({ writtenAt: 1 });
  return schema;
}

/**
 * One step of a version counter (insert-only: see `mongoose-version-store.ts`). `_id` orders the
 * steps of one counter: `u:<encoded user id>:<zero-padded version>` or `g:<zero-padded version>`.
 */
export interface VersionStepDocument {
  _id: string;
  userId: string | null;
  version: number;
  /** Global steps only. */
  rotatedAt: Date | null;
  reason: string | null;
  gracePeriodMs: number;
}

export function createVersionStepSchema(): Schema<VersionStepDocument> {
  return new Schema<VersionStepDocument>(
    {
      _id: { type: String, required: true },
      userId: { type: String, default: null },
      version: { type: Number, required: true },
      rotatedAt: { type: Date, default: null },
      reason: { type: String, default: null },
      gracePeriodMs: { type: Number, default: 0 },
    },
    SCHEMA_DEFAULTS,
  );
}

/**
 * The model for `collectionName` on the caller's connection: the one already registered under
 * the adapter's name for that collection if any (a second repository on the same connection, or
 * one the app registered itself), else a new one. Never touches Mongoose's global registry.
 */
export function modelOn<T>(
  connection: Connection,
  collectionName: string,
  schema: () => Schema<T>,
): Model<T> {
  const name = `refresh-rotation:${collectionName}`;
  const existing = connection.models[name] as Model<T> | undefined;
  return existing ?? connection.model<T>(name, schema(), collectionName);
}

/**
 * The driver's collection behind a model, for the reads and writes of every refresh: their
 * filters and values are already the stored types, so Mongoose's query building and casting
 * (~0.1 ms of CPU per call, docs/benchmarks.md) buys nothing. Still the connection's collection,
 * so `bufferCommands` and the connection's settings apply.
 */
export function driverCollection<T extends mongo.Document>(model: Model<T>): mongo.Collection<T> {
  return model.collection as unknown as mongo.Collection<T>;
}
