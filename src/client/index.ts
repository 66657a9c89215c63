/**
 * `refresh-rotation/client`: the browser half of the router's cookie transport, a dependency-free
 * ES module (no DOM types needed to compile it; see docs/express.md, "Browser apps").
 */
export {
  createSessionClient,
  type SessionChange,
  type SessionChangeReason,
  type SessionClient,
  type SessionClientOptions,
  type SessionListener,
  type SessionState,
} from './session-client';
export type { ChannelLike, ClientEnvironment, LockManagerLike, StorageLike } from './environment';
