import net from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A loopback TCP proxy in front of a test server, to play a misbehaving network: `blackhole()`
 * stops reading from the clients (and forwarding) while keeping every connection open — a server
 * that silently stops reading —, `cut()` drops the current connections (a server that went away
 * and came back). Counts connections and client bytes forwarded. With `bytesPerSecond` it is a
 * slow link: client bytes are taken no faster than that (a healthy server behind a thin pipe).
 */
export interface TcpProxy {
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Bytes forwarded from clients to the server so far. */
  readonly bytesForwarded: number;
  blackhole(): void;
  /**
   * Bytes waiting unread in the kernel's receive buffer of each client connection, by the client's
   * port (`ss`): after blackhole() they grow for as long as the kernel still takes data.
   */
  receiveQueues(): Promise<Map<number, number>>;
  cut(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1', opts: { bytesPerSecond?: number } = {}): Promise<TcpProxy> {
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
    const rate = opts.bytesPerSecond;
    let budgetFrom = Date.now();
    let taken = 0;
    client.on('data', (chunk: Buffer) => {
      bytesForwarded += chunk.length;
      server.write(chunk);
      if (rate === undefined) return;
      // Reading pauses until the bytes taken so far fit the rate (the sender's TCP then backs off).
      taken += chunk.length;
      const aheadMs = (taken / rate) * 1000 - (Date.now() - budgetFrom);
      if (aheadMs > 0) {
        client.pause();
        setTimeout(() => {
          if (!blackholed) client.resume();
        }, aheadMs);
      } else if (aheadMs < -1000) {
        // idle for a while: no credit for the past
        budgetFrom = Date.now();
        taken = 0;
      }
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
    async receiveQueues() {
      const out = new Map<number, number>();
      const { stdout } = await run('ss', ['-tnH', 'state', 'established', `( sport = :${port} )`]);
      for (const line of stdout.split('\n')) {
        const m = /^(\d+)\s+\d+\s+\S+:\d+\s+\S+:(\d+)/.exec(line.trim());
        if (m) out.set(Number(m[2]), Number(m[1]));
      }
      return out;
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
