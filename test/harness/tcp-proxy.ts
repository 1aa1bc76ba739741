import net from 'node:net';

/**
 * A loopback TCP proxy in front of a test server, to play a misbehaving network: `blackhole()`
 * stops reading from the clients (and forwarding) while keeping every connection open — a server
 * that silently stops reading —, `cut()` drops the current connections (a server that went away
 * and came back). Counts connections and client bytes forwarded.
 */
export interface TcpProxy {
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Bytes forwarded from clients to the server so far. */
  readonly bytesForwarded: number;
  blackhole(): void;
  cut(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const pairs = new Set<{ client: net.Socket; server: net.Socket }>();
  let connections = 0;
  let bytesForwarded = 0;
  let blackholed = false;
  const srv = net.createServer((client) => {
    connections++;
    const server = net.connect(targetPort, targetHost);
    const pair = { client, server };
    pairs.add(pair);
    const drop = (): void => {
      pairs.delete(pair);
      client.destroy();
      server.destroy();
    };
    client.on('error', drop).on('close', drop);
    server.on('error', drop).on('close', drop);
    client.on('data', (chunk: Buffer) => {
      bytesForwarded += chunk.length;
      server.write(chunk);
    });
    server.on('data', (chunk: Buffer) => client.write(chunk));
    if (blackholed) client.pause();
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (srv.address() as net.AddressInfo).port;
  return {
    port,
    get connections() {
      return connections;
    },
    get bytesForwarded() {
      return bytesForwarded;
    },
    blackhole() {
      blackholed = true;
      for (const { client, server } of pairs) {
        client.pause();
        server.pause();
      }
    },
    cut() {
      for (const { client, server } of [...pairs]) {
        client.destroy();
        server.destroy();
      }
    },
    async close() {
      for (const { client, server } of [...pairs]) {
        client.destroy();
        server.destroy();
      }
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}
