/**
 * A TCP proxy between one process and the Temporal server, to cut it off (a network partition)
 * and let it back. While cut, every connection through it is dropped and new ones are closed at
 * once: the process sees the server as unreachable, as it would behind a broken network.
 */
import net from 'node:net';

export class PartitionProxy {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private cutOff = false;
  /** The address to give the process, as host:port. */
  address = '';

  constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => this.accept(client));
  }

  /** Starts listening on a free local port. */
  async start(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    const a = this.server.address();
    if (typeof a !== 'object' || a === null) throw new Error('the proxy has no address');
    this.address = `127.0.0.1:${a.port}`;
    return this.address;
  }

  /** Whether the proxy is cut now. */
  get cut(): boolean {
    return this.cutOff;
  }

  /** Cuts the process off: open connections are dropped, new ones closed. */
  partition(): void {
    this.cutOff = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  /** Lets the process reach the server again. */
  heal(): void {
    this.cutOff = false;
  }

  /** Stops the proxy and drops every connection. */
  async close(): Promise<void> {
    this.partition();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    if (this.cutOff) {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.target.port, this.target.host);
    this.sockets.add(client);
    this.sockets.add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
