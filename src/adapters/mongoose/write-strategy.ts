/**
 * How the Mongoose repository writes a record where a revocation could be at stake: the one seam
 * behind which the FerretDB v1 workaround lives, so the MongoDB path reads without it.
 *
 * - {@link AtomicWrites} (MongoDB, FerretDB 2.x): each write is one command, atomic on its
 *   document; a rotation filters on `revokedAt: null` and sets only its own fields, so it can
 *   never undo a revocation.
 * - `GuardedWrites` (FerretDB v1, in `revocation-guard.ts`): find-and-modify is read-then-write
 *   there, so revocations are noted first and re-applied after every other write.
 *
 * Internal: not exported from the package. Filters and updates come in already built (the
 * repository owns the record's shape); errors propagate as the driver's.
 */
import type { Connection, Model, mongo } from 'mongoose';
import { StoreUnavailableError } from '../../domain/errors';
import { driverCollection, type RefreshTokenDocument } from './schema';

/** How the repository decides its write strategy (`revocationGuard` option). */
export type RevocationGuardMode = 'auto' | 'on' | 'off';

export type RecordFilter = mongo.Filter<RefreshTokenDocument>;
export type RecordUpdate = mongo.UpdateFilter<RefreshTokenDocument>;

/** One `touchMany` write: the latest use of one session. */
export interface SessionTouch {
  sessionId: string;
  at: Date;
}

/** The writes of the repository whose outcome a concurrent revocation could change. */
export interface WriteStrategy {
  /** Collections of its own to index at start-up, if any. */
  ensureIndexes(): Promise<void>;
  /** The hot path: one conditional find-and-modify; the record after it, or null when it matched nothing (or a revocation covers it). */
  rotate(filter: RecordFilter, update: RecordUpdate): Promise<RefreshTokenDocument | null>;
  /** Revoke the session if live; whether this call revoked it. Never lost to a racing write. */
  revokeSession(sessionId: string, reason: string, at: Date): Promise<boolean>;
  /** Revoke the live records matching `filter` (all of `userId`'s); how many this call revoked. */
  revokeUser(
    userId: string,
    filter: RecordFilter,
    revocation: { issuedBefore: Date | null; reason: string; at: Date },
  ): Promise<number>;
  /** Set `lastUsedAt` of the record with this `id`; whether it exists. */
  setLastUsed(id: string, at: Date): Promise<boolean>;
  /** `lastUsedAt = max(lastUsedAt, at)` per session; how many records changed. */
  touch(touches: readonly SessionTouch[]): Promise<number>;
  /** Housekeeping of the cleanup job (`deleteExpired`). */
  prune(now: Date, limit: number): Promise<void>;
}

/** Largest update command `touch` sends: FerretDB v1 hangs at about 100 statements in one. */
const TOUCH_WRITE_CHUNK = 50;

/** Plain `$max` updates by `_id`, in commands of at most {@link TOUCH_WRITE_CHUNK}. */
export async function writeTouches(
  records: Model<RefreshTokenDocument>,
  touches: readonly SessionTouch[],
): Promise<number> {
  const updates = touches.map(({ sessionId, at }) => ({
    updateOne: { filter: { _id: sessionId }, update: { $max: { lastUsedAt: at } } },
  }));
  let modified = 0;
  for (let start = 0; start < updates.length; start += TOUCH_WRITE_CHUNK) {
    const chunk = updates.slice(start, start + TOUCH_WRITE_CHUNK);
    modified += (await records.bulkWrite(chunk, { ordered: false })).modifiedCount;
  }
  return modified;
}

/** MongoDB (and FerretDB 2.x): every write is one atomic command. */
export class AtomicWrites implements WriteStrategy {
  constructor(private readonly records: Model<RefreshTokenDocument>) {}

  async ensureIndexes(): Promise<void> {}

  rotate(filter: RecordFilter, update: RecordUpdate): Promise<RefreshTokenDocument | null> {
    return driverCollection(this.records).findOneAndUpdate(filter, update, {
      returnDocument: 'after',
    });
  }

  async revokeSession(sessionId: string, reason: string, at: Date): Promise<boolean> {
    const { modifiedCount } = await driverCollection(this.records).updateOne(
      { _id: sessionId, revokedAt: null },
      { $set: { revokedAt: at, revokedReason: reason } },
    );
    return modifiedCount === 1;
  }

  async revokeUser(
    _userId: string,
    filter: RecordFilter,
    revocation: { reason: string; at: Date },
  ): Promise<number> {
    const { modifiedCount } = await driverCollection(this.records).updateMany(filter, {
      $set: { revokedAt: revocation.at, revokedReason: revocation.reason },
    });
    return modifiedCount;
  }

  async setLastUsed(id: string, at: Date): Promise<boolean> {
    const { matchedCount } = await driverCollection(this.records).updateOne(
      { id },
      { $set: { lastUsedAt: at } },
    );
    return matchedCount === 1;
  }

  touch(touches: readonly SessionTouch[]): Promise<number> {
    return writeTouches(this.records, touches);
  }

  async prune(): Promise<void> {}
}

/**
 * Whether the server needs the revocation guard: FerretDB v1, whose find-and-modify is
 * read-then-write. FerretDB 2.x (on PostgreSQL with DocumentDB) is atomic and gets the MongoDB
 * path. A FerretDB whose version cannot be read (a build without its version file reports
 * `unknown`) is taken for v1: the guard costs speed, its absence could cost a revocation.
 */
export function needsRevocationGuard(buildInfo: Record<string, unknown>): boolean {
  const version = buildInfo['ferretdbVersion'];
  if (version === undefined) return 'ferretdb' in buildInfo;
  const major = /^v?(\d+)\./.exec(String(version))?.[1];
  return major === undefined || Number(major) < 2;
}

/** Asks the server (`buildInfo`) whether it needs the revocation guard. */
export async function serverNeedsRevocationGuard(connection: Connection): Promise<boolean> {
  await connection.asPromise();
  const db = connection.db;
  if (!db) throw new StoreUnavailableError('the Mongoose connection is not open');
  return needsRevocationGuard(await db.admin().command({ buildInfo: 1 }));
}
