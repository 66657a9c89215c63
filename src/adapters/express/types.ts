import type { AccessTokenClaims } from '../../rotation-service';

/** What `authenticate` puts on `req.auth` once the bearer access token has been verified. */
export interface AuthContext {
  /** The `sub` claim. */
  userId: string;
  /** The `sid` claim: the session this access token belongs to. */
  sessionId: string;
  /** The `ver` claim: the token version the session was issued at. */
  tokenVersion: number;
  /** Every verified claim. */
  claims: AccessTokenClaims;
}

declare global {
  // Express's own typings extend requests through this global namespace (Express 4 and 5 alike).
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Set by `authenticate()` when the request carries a valid bearer access token. */
      auth?: AuthContext | undefined;
    }
  }
}

/**
 * The logging the adapter needs; pino, bunyan and console fit. When a request carries a logger
 * (`req.log`, as pino-http sets), that one is used instead. Never receives a token.
 */
export interface AdapterLogger {
  error(object: object, message?: string): void;
  warn(object: object, message?: string): void;
}
