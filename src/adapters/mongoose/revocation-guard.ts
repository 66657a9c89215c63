/**
 * Keeps revocations from being lost on a MongoDB-wire server whose updates are read-then-write.
 *
 * On MongoDB every update is atomic on its document: `rotate` filters on `revokedAt: null`, and
 * `$set`/`$max` touch only their fields, so a revocation can never be overwritten. FerretDB v1
 * (SQLite) instead reads the document, applies the operators in memory, and writes the WHOLE
 * document back by `_id`, outside any transaction with the read (handler/common/update.go,
 * backends/sqlite/collection.go UpdateAll). A `rotate` (or a touch) that read the record just
 * before a revocation therefore writes `revokedAt: null` back over it: measured on FerretDB
 * v1.24.2, 80 of 200 naive revoke-vs-rotate races lost the revocation.
 *
 * The guard: a revoker first inserts a note (insert is atomic everywhere: a unique `_id` in one
 * SQLite transaction), then marks the record(s). Every other write to a record (`rotate`,
 * `updateLastUsed`, `touchMany`) reads the notes AFTER its own write and, if one covers the record,
 * applies it again. Whatever the interleaving, the last write to a covered record is then
 * followed by a re-application, so the record ends revoked. {@link GuardedWrites} is the
 * repository's write strategy on FerretDB v1 (`revocationGuard: 'auto'`); on MongoDB the guard
 * would only cost a read per rotation (write-strategy.ts).
 */
import type { Model } from 'mongoose';
import { v7 as uuidv7 } from 'uuid';
import { StoreUnavailableError } from '../../domain/errors';
import { driverCollection, type RefreshTokenDocument, type RevocationNoteDocument } from './schema';
import {
  writeTouches,
  type RecordFilter,
  type RecordUpdate,
  type SessionTouch,
  type WriteStrategy,
} from './write-strategy';

/** Notes matter only while a write that read the old state is in flight; keep them well past that. */
export const NOTE_RETENTION_MS = 10 * 60_000;

/** Attempts to make a revocation stick before giving up with `StoreUnavailableError`. */
const MAX_ENFORCE_ATTEMPTS = 20;

/** `_id` is the session id. */
type RecordRef = Pick<RefreshTokenDocument, '_id' | 'userId' | 'createdAt'>;

function sessionNoteId(sessionId: string): string {
  return `s:${sessionId}`;
}

function covers(note: RevocationNoteDocument, record: RecordRef): boolean {
  if (note.sessionId !== null) return note.sessionId === record._id;
  if (note.userId !== record.userId) return false;
  return note.issuedBefore === null || record.createdAt.getTime() < note.issuedBefore.getTime();
}

function byWrittenAt(a: RevocationNoteDocument, b: RevocationNoteDocument): number {
  return (
    a.writtenAt.getTime() - b.writtenAt.getTime() || (a._id < b._id ? -1 : a._id > b._id ? 1 : 0)
  );
}

/** Notes and re-application (only used when the guard is on). */
export class RevocationGuard {
  constructor(
    private readonly records: Model<RefreshTokenDocument>,
    private readonly notes: Model<RevocationNoteDocument>,
  ) {}

  /**
   * Note a session revocation; returns the note in force: this one if it was written, else the
   * one an earlier or concurrent revoker wrote (so every revoker applies the same time and reason).
   */
  async noteSession(
    sessionId: string,
    fields: { at: Date; reason: string; writtenAt: Date },
  ): Promise<{ note: RevocationNoteDocument; written: boolean }> {
    const note: RevocationNoteDocument = {
      _id: sessionNoteId(sessionId),
      sessionId,
      userId: null,
      issuedBefore: null,
      ...fields,
    };
    try {
      await this.notes.create(note);
      return { note, written: true };
    } catch (error) {
      if ((error as { code?: unknown }).code !== 11000) throw error;
      const existing = await this.notes.findById(note._id).lean<RevocationNoteDocument>();
      return { note: existing ?? note, written: false };
    }
  }

  /** Note a user-wide revocation (never collides: each gets its own id). */
  async noteUser(
    userId: string,
    fields: { issuedBefore: Date | null; at: Date; reason: string; writtenAt: Date },
  ): Promise<RevocationNoteDocument> {
    const note: RevocationNoteDocument = {
      _id: `u:${uuidv7()}`,
      sessionId: null,
      userId,
      ...fields,
    };
    await this.notes.create(note);
    return note;
  }

  /**
   * After writing `written` records: re-apply any note covering them. Returns the ids of the
   * records a note covers (the caller's write did not stand as a live record).
   */
  async reassert(written: readonly RecordRef[]): Promise<Set<string>> {
    if (written.length === 0) return new Set();
    const userIds = [...new Set(written.map((record) => record.userId))];
    const notes = await driverCollection(this.notes)
      .find({
        $or: [
          { _id: { $in: written.map((record) => sessionNoteId(record._id)) } },
          { userId: { $in: userIds } },
        ],
      })
      .toArray();
    return this.apply(notes, written);
  }

  /**
   * After writing the records of `sessionIds` (a batch of touches): re-apply any note covering
   * them. Reads the notes first (a short-lived collection) and then only the records a note may
   * cover, each by its `_id`: on FerretDB an `$in` over the sessions scans the whole record
   * collection, whose size is the number of stored sessions.
   */
  async reassertSessions(sessionIds: readonly string[]): Promise<void> {
    const notes = await driverCollection(this.notes).find({}).toArray();
    if (notes.length === 0 || sessionIds.length === 0) return;
    const touched = new Set(sessionIds);
    const records = new Map<string, RefreshTokenDocument>();
    const keep = (docs: readonly RefreshTokenDocument[]) => {
      for (const doc of docs) if (touched.has(doc._id)) records.set(doc._id, doc);
    };
    const collection = driverCollection(this.records);
    const sessions = new Set(notes.flatMap((note) => note.sessionId ?? []));
    const users = new Set(
      notes.flatMap((note) =>
        note.sessionId === null && note.userId !== null ? [note.userId] : [],
      ),
    );
    for (const sessionId of sessions) {
      if (!touched.has(sessionId)) continue;
      const doc = await collection.findOne({ _id: sessionId });
      keep(doc ? [doc] : []);
    }
    for (const userId of users) keep(await collection.find({ userId }).toArray());
    await this.apply(notes, [...records.values()]);
  }

  /** Enforce, on each record, the earliest of `notes` that covers it; the ids of those covered. */
  private async apply(
    notes: RevocationNoteDocument[],
    written: readonly RecordRef[],
  ): Promise<Set<string>> {
    const covered = new Set<string>();
    if (notes.length === 0) return covered;
    notes.sort(byWrittenAt);
    for (const record of written) {
      const note = notes.find((candidate) => covers(candidate, record));
      if (!note) continue;
      covered.add(record._id);
      await this.enforce(record._id, note);
    }
    return covered;
  }

  /** Mark the session's record revoked with the note's time and reason until a read shows it revoked (or gone). */
  async enforce(id: string, note: Pick<RevocationNoteDocument, 'at' | 'reason'>): Promise<void> {
    for (let attempt = 0; attempt < MAX_ENFORCE_ATTEMPTS; attempt += 1) {
      const collection = driverCollection(this.records);
      await collection.updateOne(
        { _id: id, revokedAt: null },
        { $set: { revokedAt: note.at, revokedReason: note.reason } },
      );
      const current = await collection.findOne({ _id: id });
      if (!current || current.revokedAt !== null) return;
    }
    throw new StoreUnavailableError(
      `could not make the revocation of session ${id} stick after ${MAX_ENFORCE_ATTEMPTS} attempts`,
    );
  }

  /** Delete at most `limit` notes written before `before`. */
  async prune(before: Date, limit: number): Promise<void> {
    const old = await this.notes
      .find({ writtenAt: { $lt: before } })
      .limit(limit)
      .lean<Pick<RevocationNoteDocument, '_id'>[]>();
    if (old.length === 0) return;
    await this.notes.deleteMany({
      _id: { $in: old.map((note) => note._id) },
      writtenAt: { $lt: before },
    });
  }
}

/**
 * The write strategy for FerretDB v1: revocations are noted before they are applied, and every
 * other write that could undo one is followed by the guard's re-check.
 */
export class GuardedWrites implements WriteStrategy {
  private readonly guard: RevocationGuard;
  /** The last rotation of each session in flight in this process (see `rotate`). */
  private readonly rotating = new Map<string, Promise<void>>();

  constructor(
    private readonly records: Model<RefreshTokenDocument>,
    private readonly notes: Model<RevocationNoteDocument>,
    private readonly clock: { now(): Date },
  ) {
    this.guard = new RevocationGuard(records, notes);
  }

  async ensureIndexes(): Promise<void> {
    await this.notes.createIndexes();
  }

  /**
   * One rotation of a session at a time in this process. FerretDB v1's find-and-modify reads, then
   * writes the whole document: two racing rotations (tabs sharing a cookie) both match, and the
   * one that read first can land last and move the generation backwards, after which the newest
   * token looks like reuse and the session is revoked. Since format 3, two winners would also
   * have drawn two different random tokens, and the one whose write was overwritten would hand
   * its client a token the record never stored. Serialised, the second caller matches nothing
   * and takes the grace path, which answers with the winner's token. That closes both for one app
   * instance; across instances FerretDB v1 can still race (docs/decisions.md).
   */
  async rotate(filter: RecordFilter, update: RecordUpdate): Promise<RefreshTokenDocument | null> {
    const sessionId = String(filter._id);
    const before = this.rotating.get(sessionId) ?? Promise.resolve();
    const mine = before.then(() => this.rotateNow(filter, update));
    const done = mine.then(
      () => undefined,
      () => undefined,
    );
    this.rotating.set(sessionId, done);
    try {
      return await mine;
    } finally {
      if (this.rotating.get(sessionId) === done) this.rotating.delete(sessionId);
    }
  }

  private async rotateNow(
    filter: RecordFilter,
    update: RecordUpdate,
  ): Promise<RefreshTokenDocument | null> {
    const rotated = await driverCollection(this.records).findOneAndUpdate(filter, update, {
      returnDocument: 'after',
    });
    if (!rotated) return null;
    return (await this.guard.reassert([rotated])).size > 0 ? null : rotated;
  }

  async revokeSession(sessionId: string, reason: string, at: Date): Promise<boolean> {
    const record = await driverCollection(this.records).findOne({ _id: sessionId });
    if (!record || record.revokedAt !== null) return false;
    const { note, written } = await this.guard.noteSession(sessionId, {
      at,
      reason,
      writtenAt: this.clock.now(),
    });
    await this.guard.enforce(sessionId, note);
    return written;
  }

  async revokeUser(
    userId: string,
    filter: RecordFilter,
    revocation: { issuedBefore: Date | null; reason: string; at: Date },
  ): Promise<number> {
    const { at, reason } = revocation;
    await this.guard.noteUser(userId, { ...revocation, writtenAt: this.clock.now() });
    const collection = driverCollection(this.records);
    const { modifiedCount } = await collection.updateMany(filter, {
      $set: { revokedAt: at, revokedReason: reason },
    });
    const stillLive = await collection.find(filter).toArray();
    for (const record of stillLive) await this.guard.enforce(record._id, { at, reason });
    return modifiedCount;
  }

  async setLastUsed(id: string, at: Date): Promise<boolean> {
    const updated = await driverCollection(this.records).findOneAndUpdate(
      { id },
      { $set: { lastUsedAt: at } },
      { returnDocument: 'after' },
    );
    if (!updated) return false;
    await this.guard.reassert([updated]);
    return true;
  }

  async touch(touches: readonly SessionTouch[]): Promise<number> {
    const modified = await writeTouches(this.records, touches);
    await this.guard.reassertSessions(touches.map((touch) => touch.sessionId));
    return modified;
  }

  async prune(now: Date, limit: number): Promise<void> {
    await this.guard.prune(new Date(now.getTime() - NOTE_RETENTION_MS), limit);
  }
}
