/**
 * The tracing port: each use case of the service runs inside one span (DESIGN.md §12). What a span
 * may carry is decided here, not by the adapter: low-cardinality values only (an outcome, a
 * binding method, a token format), never a token, a tag, a proof, a user or session id. Pure.
 */

/** The use cases that get a span, named `refresh-rotation.<operation>`. */
export type TracedOperation =
  | 'issue'
  | 'refresh'
  | 'revoke_session'
  | 'revoke_by_token'
  | 'bind_device'
  | 'refresh_by_device_proof'
  | 'revoke_all'
  | 'rotate_global'
  | 'list_sessions'
  | 'check_revocation';

/** The attributes a span may carry, and their values: nothing else can be set. */
export interface TraceAttributes {
  /** How a refresh ended: the metrics' `outcome` vocabulary (`RefreshOutcome`). */
  'refresh_rotation.outcome'?: string;
  /** How the refresh token came: `cookie` or `body` (the HTTP adapter says; absent otherwise). */
  'refresh_rotation.transport'?: string;
  /** `none` for a bearer session, else its binding method (`dpop`, `dbsc`). */
  'refresh_rotation.binding'?: string;
  /** The refresh-token format the library writes (3). */
  'refresh_rotation.token_format'?: number;
  /** Whether an access token's session may still act (`check_revocation`). */
  'refresh_rotation.current'?: boolean;
}

/** The span of one use case, as the use case sees it. */
export interface OperationSpan {
  set(attributes: TraceAttributes): void;
}

/**
 * Runs `work` inside the span of `operation`, a child of the caller's active span (the HTTP
 * request, the job). A thrown error ends the span with its error code (`error.type`), never its
 * message, and is thrown on unchanged.
 */
export interface OperationTracer {
  run<T>(operation: TracedOperation, work: (span: OperationSpan) => Promise<T>): Promise<T>;
}

const NO_SPAN: OperationSpan = { set: () => undefined };

/** Tracing off: `work` runs as it is. */
export const NO_TRACING: OperationTracer = { run: (_operation, work) => work(NO_SPAN) };
