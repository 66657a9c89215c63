import type { Connection, Model } from 'mongoose';
import { OptionsError, StoreUnavailableError } from '../../domain/errors';
import type { GlobalVersion } from '../../domain/refresh-token';
import type { VersionStore } from '../../domain/version-store';
import { isDuplicateKeyError, mapStoreErrors } from './errors';
import { createVersionStepSchema, modelOn, type VersionStepDocument } from './schema';

/** Options of {@link MongooseVersionStore}. */
export interface MongooseVersionStoreOptions {
  /** Collection of the version steps. Default `refresh_token_versions`. */
  collectionName?: string | undefined;
}

const DEFAULT_COLLECTION = 'refresh_token_versions';
const VERSION_DIGITS = 15;
/** Bumps racing for the next version each retry with the one after; this bounds a pathological loop. */
const MAX_BUMP_ATTEMPTS = 1_000;
const GLOBAL_KEY = 'g:';
const NEVER_ROTATED: GlobalVersion = {
  minVersion: 0,
  rotatedAt: null,
  reason: null,
  gracePeriodMs: 0,
};

/** `u:<id>:`; the encoded id never contains `:`, so no user's prefix is a prefix of another's. */
function userKey(userId: string): string {
  return `u:${encodeURIComponent(userId)}:`;
}

function stepId(key: string, version: number): string {
  return key + String(version).padStart(VERSION_DIGITS, '0');
}

/** Every `_id` that starts with `key` (which ends with `:`), and nothing else. */
function stepsOf(key: string): { _id: { $gte: string; $lt: string } } {
  return { _id: { $gte: key, $lt: `${key.slice(0, -1)};` } };
}

function toGlobal(step: VersionStepDocument | null): GlobalVersion {
  if (!step) return { ...NEVER_ROTATED };
  return {
    minVersion: step.version,
    rotatedAt: step.rotatedAt,
    reason: step.reason,
    gracePeriodMs: step.gracePeriodMs,
  };
}

/** The options this store had while it kept a cache of its own: refused, saying where it went. */
function refuseRemovedCacheOptions(options: object): void {
  for (const name of ['cacheTtlMs', 'cacheMaxEntries', 'clock']) {
    if (name in options && (options as Record<string, unknown>)[name] !== undefined) {
      throw new OptionsError(
        `MongooseVersionStore no longer caches, so ${name} is gone: set RotationService's revocationCache ({ ttl, ttlWithBus, maxEntries }), the one cache of versions`,
      );
    }
  }
}

/**
 * The MongoDB `VersionStore` on the caller's Mongoose connection (never connects, closes or
 * changes global settings; reuses its model if already registered).
 *
 * Each counter (one per user, one global) is a series of insert-only steps with a unique `_id`
 * (`u:<user>:<version>`, `g:<version>`): a bump reads the highest step and inserts the next one,
 * taking the one after on a duplicate key. An insert with a unique `_id` is atomic on MongoDB and on
 * FerretDB alike, so no bump is ever lost; an `$inc` upsert would lose bumps on FerretDB v1,
 * whose updates are read-then-write. Reading is one indexed `_id` range query (the highest step).
 * Steps are a few dozen bytes and only written on password changes, logout-everywhere and breach
 * rotation; old steps may be deleted by hand, keeping each counter's highest.
 */
export class MongooseVersionStore implements VersionStore {
  private readonly steps: Model<VersionStepDocument>;

  constructor(connection: Connection, options: MongooseVersionStoreOptions = {}) {
    refuseRemovedCacheOptions(options);
    const collectionName = options.collectionName ?? DEFAULT_COLLECTION;
    if (typeof collectionName !== 'string' || collectionName.trim() === '') {
      throw new OptionsError(
        `collectionName must be a non-empty collection name; got ${JSON.stringify(collectionName)}`,
      );
    }
    this.steps = modelOn(connection, collectionName, createVersionStepSchema);
  }

  async getUserMinVersion(userId: string): Promise<number> {
    return mapStoreErrors(
      'getUserMinVersion',
      async () => (await this.latest(userKey(userId)))?.version ?? 0,
    );
  }

  async bumpUserMinVersion(userId: string): Promise<number> {
    return mapStoreErrors('bumpUserMinVersion', async () => {
      const step = await this.bump(userKey(userId), (version) => ({
        userId,
        version,
        rotatedAt: null,
        reason: null,
        gracePeriodMs: 0,
      }));
      return step.version;
    });
  }

  async getGlobal(): Promise<GlobalVersion> {
    return mapStoreErrors('getGlobal', async () => toGlobal(await this.latest(GLOBAL_KEY)));
  }

  async bumpGlobal(input: {
    reason: string;
    gracePeriodMs: number;
    at: Date;
  }): Promise<GlobalVersion> {
    return mapStoreErrors('bumpGlobal', async () =>
      toGlobal(
        await this.bump(GLOBAL_KEY, (version) => ({
          userId: null,
          version,
          rotatedAt: input.at,
          reason: input.reason,
          gracePeriodMs: input.gracePeriodMs,
        })),
      ),
    );
  }

  private async latest(key: string): Promise<VersionStepDocument | null> {
    return this.steps.findOne(stepsOf(key)).sort({ _id: -1 }).lean<VersionStepDocument>();
  }

  private async bump(
    key: string,
    fields: (version: number) => Omit<VersionStepDocument, '_id'>,
  ): Promise<VersionStepDocument> {
    let version = ((await this.latest(key))?.version ?? 0) + 1;
    for (let attempt = 0; attempt < MAX_BUMP_ATTEMPTS; attempt += 1, version += 1) {
      const step: VersionStepDocument = { _id: stepId(key, version), ...fields(version) };
      try {
        await this.steps.create(step);
        return step;
      } catch (error) {
        if (!isDuplicateKeyError(error)) throw error;
      }
    }
    throw new StoreUnavailableError(`could not bump ${key} after ${MAX_BUMP_ATTEMPTS} attempts`);
  }
}
