// A private Redis Cluster for one suite: six redis-server processes with
// --cluster-enabled (3 masters, 3 replicas) joined by `redis-cli --cluster
// create`, on free loopback ports (each port + 10000 free too, for the cluster
// bus), with a short cluster-node-timeout so a failover takes seconds.
// Awaited on CLUSTER INFO, never a sleep.
import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { freePort } from './ports';
import { isComplete, RedisServer } from './redis-server';
import { waitFor } from './wait-for';

const run = promisify(execFile);

export interface ClusterNode {
  id: string;
  port: number;
  master: boolean;
  /** Slot ranges a master serves, e.g. [[0, 5460]]. */
  slots: [number, number][];
}

export class RedisClusterSetup {
  private constructor(readonly servers: RedisServer[]) {}

  static async start(): Promise<RedisClusterSetup> {
    const ports: number[] = [];
    while (ports.length < 6) {
      const port = await freePort();
      if (port < 55_000 && !ports.includes(port) && (await isFree(port + 10_000))) ports.push(port);
    }
    const servers: RedisServer[] = [];
    const setup = new RedisClusterSetup(servers);
    try {
      for (const port of ports) {
        servers.push(
          await RedisServer.start(
            [
              '--cluster-enabled',
              'yes',
              '--cluster-config-file',
              `nodes-${port}.conf`,
              '--cluster-node-timeout',
              '1000',
              // A replica takes over however long it was cut off from its master.
              '--cluster-replica-validity-factor',
              '0',
            ],
            port,
          ),
        );
      }
      await run('redis-cli', [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '1',
        '--cluster-yes',
      ]);
      await setup.waitUntilHealthy();
    } catch (err) {
      await setup.stop();
      throw err;
    }
    return setup;
  }

  /** Seed URLs for --redis-cluster. */
  get urls(): string[] {
    return this.servers.map((s) => s.url);
  }

  /** Every running node says cluster_state:ok, 3 masters serve all slots, every replica is in sync. */
  async waitUntilHealthy(timeout = 20_000): Promise<void> {
    await waitFor(
      async () => {
        for (const server of this.servers.filter((s) => s.running)) {
          const info = await command(server.port, 'CLUSTER', 'INFO');
          if (!info.includes('cluster_state:ok') || !info.includes('cluster_slots_ok:16384')) return false;
        }
        const nodes = await this.nodes();
        if (nodes.filter((n) => n.master && n.slots.length > 0).length !== 3) return false;
        // Every replica has finished its first sync: a failover then loses nothing already written.
        for (const node of nodes.filter((n) => !n.master)) {
          if (!(await command(node.port, 'INFO', 'replication')).includes('master_link_status:up')) return false;
        }
        return true;
      },
      { timeout, interval: 100, what: 'the cluster to be ok' },
    );
  }

  /** CLUSTER NODES as seen by a running node (failed nodes left out). */
  async nodes(): Promise<ClusterNode[]> {
    const live = this.servers.find((s) => s.running) as RedisServer;
    const text = await command(live.port, 'CLUSTER', 'NODES');
    const body = text.slice(text.indexOf('\r\n') + 2);
    return body
      .split('\n')
      .filter((line) => line.trim() !== '' && !/\bfail\b/.test(line.split(' ')[2] ?? ''))
      .map((line) => {
        const [id, address, flags, , , , , , ...slots] = line.trim().split(' ');
        return {
          id: id as string,
          port: Number((address as string).split(':')[1]?.split('@')[0]),
          master: (flags as string).includes('master'),
          slots: slots
            .filter((s) => /^\d/.test(s))
            .map((s) => {
              const [a, b] = s.split('-').map(Number);
              return [a as number, b ?? (a as number)] as [number, number];
            }),
        };
      });
  }

  /** The slot of a key or channel (CLUSTER KEYSLOT). */
  async slotOf(key: string): Promise<number> {
    const live = this.servers.find((s) => s.running) as RedisServer;
    return Number((await command(live.port, 'CLUSTER', 'KEYSLOT', key)).slice(1));
  }

  /** The master node serving `key`'s slot now. */
  async masterOf(key: string): Promise<RedisServer> {
    const slot = await this.slotOf(key);
    const node = (await this.nodes()).find((n) => n.master && n.slots.some(([a, b]) => slot >= a && slot <= b));
    return this.servers.find((s) => s.port === node?.port) as RedisServer;
  }

  /** One command to the node on `port`. */
  command(port: number, ...args: string[]): Promise<string> {
    return command(port, ...args);
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function command(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    socket.setTimeout(3000, () => socket.destroy(new Error('redis command timed out')));
    socket.on('connect', () =>
      socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`),
    );
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (isComplete(reply)) {
        socket.end();
        resolve(reply);
      }
    });
    socket.on('error', reject);
  });
}
