import type {
  RevocationBus,
  RevocationNotice,
  RevocationSignal,
} from '../../domain/revocation-bus';

/**
 * The in-process `RevocationBus`: every service subscribed to one instance hears every notice at
 * once. For tests and for several services in one process; across processes use
 * `RedisRevocationBus`.
 */
export class MemoryRevocationBus implements RevocationBus {
  private readonly listeners = new Set<(signal: RevocationSignal) => void>();

  async publish(notice: RevocationNotice): Promise<void> {
    for (const listener of [...this.listeners]) listener({ ...notice });
  }

  /** Always synced: `publish` reaches every listener before it returns. */
  async sync(): Promise<boolean> {
    return true;
  }

  subscribe(listener: (signal: RevocationSignal) => void): () => void {
    const own = (signal: RevocationSignal) => listener(signal);
    this.listeners.add(own);
    return () => void this.listeners.delete(own);
  }
}
