import type { GlobalVersion } from '../../domain/refresh-token';
import type { VersionStore } from '../../domain/version-store';

function copyGlobal(global: GlobalVersion): GlobalVersion {
  return { ...global, rotatedAt: global.rotatedAt && new Date(global.rotatedAt.getTime()) };
}

/**
 * The in-memory `VersionStore`: per-user and global minimum versions held in this process.
 * Each bump is a single synchronous step, hence atomic. For tests and the demo.
 */
export class MemoryVersionStore implements VersionStore {
  private readonly users = new Map<string, number>();
  private global: GlobalVersion = {
    minVersion: 0,
    rotatedAt: null,
    reason: null,
    gracePeriodMs: 0,
  };

  async getUserMinVersion(userId: string): Promise<number> {
    return this.users.get(userId) ?? 0;
  }

  async bumpUserMinVersion(userId: string): Promise<number> {
    const next = (this.users.get(userId) ?? 0) + 1;
    this.users.set(userId, next);
    return next;
  }

  async getGlobal(): Promise<GlobalVersion> {
    return copyGlobal(this.global);
  }

  async bumpGlobal(input: {
    reason: string;
    gracePeriodMs: number;
    at: Date;
  }): Promise<GlobalVersion> {
    this.global = {
      minVersion: this.global.minVersion + 1,
      rotatedAt: new Date(input.at.getTime()),
      reason: input.reason,
      gracePeriodMs: input.gracePeriodMs,
    };
    return copyGlobal(this.global);
  }
}
