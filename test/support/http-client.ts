/**
 * Plain HTTP/1.1 to an app listening on 127.0.0.1, through a keep-alive agent: no supertest, no
 * mocks. `startApp()` (app-harness.ts) gives every app one as `http`, the router harness
 * (router-harness.ts) one per `listen()`.
 */
import {
  Agent,
  request as httpRequest,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http';

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The parsed JSON body, or undefined. */
  body: Record<string, unknown> | undefined;
  ms: number;
}

export interface HttpRequestSpec {
  method?: string;
  path: string;
  headers?: OutgoingHttpHeaders;
  body?: string | Buffer;
  /** Give up (and reject) after this long. Default 30 s. */
  timeoutMs?: number;
}

/** Plain HTTP/1.1 to the app over keep-alive sockets. */
export class HttpClient {
  private readonly agent: Agent;
  private closedFlag = false;

  /** `maxSockets` bounds how many requests are on the wire at once. */
  constructor(
    readonly base: string,
    maxSockets = 32,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets });
  }

  /** True once `close()` ran: every later request rejects at once, and load loops end. */
  get closed(): boolean {
    return this.closedFlag;
  }

  send(spec: HttpRequestSpec): Promise<HttpAnswer> {
    if (this.closedFlag) return Promise.reject(new Error('HttpClient is closed'));
    const started = Date.now();
    const url = new URL(spec.path, this.base);
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        url,
        { method: spec.method ?? 'GET', headers: spec.headers, agent: this.agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: Record<string, unknown> | undefined;
            try {
              body = JSON.parse(text) as Record<string, unknown>;
            } catch {
              body = undefined;
            }
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              text,
              body,
              ms: Date.now() - started,
            });
          });
        },
      );
      req.setTimeout(spec.timeoutMs ?? 30_000, () =>
        req.destroy(new Error(`no answer within ${spec.timeoutMs ?? 30_000} ms`)),
      );
      req.on('error', reject);
      req.end(spec.body);
    });
  }

  json(
    method: string,
    path: string,
    body: unknown,
    headers: OutgoingHttpHeaders = {},
  ): Promise<HttpAnswer> {
    return this.send({
      method,
      path,
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  }

  refresh(refreshToken: string): Promise<HttpAnswer> {
    return this.json('POST', '/auth/token', { refresh_token: refreshToken });
  }

  bearer(method: string, path: string, accessToken: string): Promise<HttpAnswer> {
    return this.send({ method, path, headers: { authorization: `Bearer ${accessToken}` } });
  }

  close(): void {
    this.closedFlag = true;
    this.agent.destroy();
  }
}
