import type { Connection, Model } from 'mongoose';
import { OptionsError, StoreUnavailableError } from '../../domain/errors';
import { systemClock, type Clock, type GlobalVersion } from '../../domain/refresh-token';
import { ExpiringCache } from '../../domain/expiring-cache';
import type { VersionCacheScope, VersionStore } from '../../domain/version-store';
import { isDuplicateKeyError, mapStoreErrors } from './errors';
import { createVersionStepSchema, modelOn, type VersionStepDocument } from './schema';

/** Options of {@link MongooseVersionStore}. */
export interface MongooseVersionStoreOptions {
  /** Collection of the version steps. Default `refresh_token_versions`. */
  collectionName?: string | undefined;
  /**
   * How long a read (user minimum, global version) may be served from this process's cache, in
   * ms. Default 1000; 0 disables the cache. Writes through this store clear it at once; writes by
   * other processes are seen at once when they are announced on a `RevocationBus` (given to the
   * `RotationService`), and after at most this long otherwise (no bus, or the bus is down).
   */
  cacheTtlMs?: number | undefined;
  /** Most entries the cache holds (the oldest go first). Default 10 000. */
  cacheMaxEntries?: number | undefined;
  /** Source of time for cache expiry. Default: the system clock. */
  clock?: Clock | undefined;
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

function copyGlobal(global: GlobalVersion): GlobalVersion {
  return { ...global, rotatedAt: global.rotatedAt && new Date(global.rotatedAt.getTime()) };
}

function wholeNumber(value: unknown, option: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new OptionsError(`${option} must be a whole number >= 0; got ${String(value)}`);
  }
  return value;
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
  private readonly cache: ExpiringCache<number | GlobalVersion>;
  private readonly cacheTtlMs: number;

  constructor(connection: Connection, options: MongooseVersionStoreOptions = {}) {
    const collectionName = options.collectionName ?? DEFAULT_COLLECTION;
    if (typeof collectionName !== 'string' || collectionName.trim() === '') {
      throw new OptionsError(
        `collectionName must be a non-empty collection name; got ${JSON.stringify(collectionName)}`,
      );
    }
    this.cacheTtlMs = wholeNumber(options.cacheTtlMs, 'cacheTtlMs', 1_000);
    this.cache = new ExpiringCache(
      Math.max(1, wholeNumber(options.cacheMaxEntries, 'cacheMaxEntries', 10_000)),
      options.clock ?? systemClock,
    );
    this.steps = modelOn(connection, collectionName, createVersionStepSchema);
  }

  async getUserMinVersion(userId: string): Promise<number> {
    const key = userKey(userId);
    return mapStoreErrors('getUserMinVersion', () =>
      this.cache.read(key, async () => (await this.latest(key))?.version ?? 0, this.cacheTtlMs),
    ) as Promise<number>;
  }

  async bumpUserMinVersion(userId: string): Promise<number> {
    const key = userKey(userId);
    return mapStoreErrors('bumpUserMinVersion', async () => {
      try {
        const step = await this.bump(key, (version) => ({
          userId,
          version,
          rotatedAt: null,
          reason: null,
          gracePeriodMs: 0,
        }));
        return step.version;
      } finally {
        this.cache.invalidate(key);
      }
    });
  }

  async getGlobal(): Promise<GlobalVersion> {
    return mapStoreErrors('getGlobal', async () =>
      copyGlobal(
        (await this.cache.read(
          GLOBAL_KEY,
          async () => toGlobal(await this.latest(GLOBAL_KEY)),
          this.cacheTtlMs,
        )) as GlobalVersion,
      ),
    );
  }

  async bumpGlobal(input: {
    reason: string;
    gracePeriodMs: number;
    at: Date;
  }): Promise<GlobalVersion> {
    return mapStoreErrors('bumpGlobal', async () => {
      try {
        const step = await this.bump(GLOBAL_KEY, (version) => ({
          userId: null,
          version,
          rotatedAt: input.at,
          reason: input.reason,
          gracePeriodMs: input.gracePeriodMs,
        }));
        return toGlobal(step);
      } finally {
        this.cache.invalidate(GLOBAL_KEY);
      }
    });
  }

  /** Drop cached reads (another instance bumped; see `RevocationBus`). */
  forgetCached(scope: VersionCacheScope): void {
    if (scope.kind === 'all') this.cache.clear();
    else this.cache.invalidate(scope.kind === 'user' ? userKey(scope.userId) : GLOBAL_KEY);
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
