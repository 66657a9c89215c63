/**
 * A TCP proxy in front of a real server, for fault tests: while frozen it holds every byte in
 * both directions (the connections stay open, so a client's operation hangs as on a stalled
 * server); thawing delivers what was held. Not a mock: the server behind it is the real one.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface FreezableProxy {
  readonly port: number;
  /** Hold all traffic from now on. */
  freeze(): void;
  /** Deliver what was held and forward again. */
  thaw(): void;
  /** Client connections open through the proxy now. */
  connections(): number;
  /** Close the listener and every connection. Idempotent. */
  close(): Promise<void>;
}

interface Pipe {
  client: Socket;
  upstream: Socket;
  held: Array<{ to: Socket; chunk: Buffer }>;
}

export async function startFreezableProxy(
  targetPort: number,
  targetHost = '127.0.0.1',
): Promise<FreezableProxy> {
  let frozen = false;
  const pipes = new Set<Pipe>();

  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, targetHost);
    const pipe: Pipe = { client, upstream, held: [] };
    pipes.add(pipe);
    const forward = (to: Socket) => (chunk: Buffer) => {
      if (frozen) pipe.held.push({ to, chunk });
      else to.write(chunk);
    };
    client.on('data', forward(upstream));
    upstream.on('data', forward(client));
    const end = () => {
      pipes.delete(pipe);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  let closing: Promise<void> | undefined;
  return {
    port,
    freeze: () => {
      frozen = true;
    },
    connections: () => pipes.size,
    thaw: () => {
      frozen = false;
      for (const pipe of pipes) {
        for (const { to, chunk } of pipe.held.splice(0)) to.write(chunk);
      }
    },
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        for (const pipe of pipes) {
          pipe.client.destroy();
          pipe.upstream.destroy();
        }
        server.close(() => resolve());
      })),
  };
}
