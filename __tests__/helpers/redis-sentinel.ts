// A private Sentinel set-up for one suite: a master, one replica and three
// redis-sentinel processes on free loopback ports, each sentinel with its own
// writable config file (a sentinel rewrites it), short down-after and
// failover timeouts so a failover takes seconds. Awaited on the sentinels'
// own answers (CKQUORUM, replica link up), never a sleep.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HubOptions } from '../../src/core/options';
import type { FailoverScenario } from './failover';
import { freePort } from './ports';
import { isComplete, RedisServer } from './redis-server';
import { waitFor } from './wait-for';

export interface SentinelSetupOptions {
  /** requirepass/masterauth of master and replica. */
  password?: string;
  /** requirepass of the sentinels themselves. */
  sentinelPassword?: string;
}

export class SentinelSetup {
  readonly name = 'mymaster';
  readonly sentinelPorts: number[] = [];
  private readonly procs: ChildProcess[] = [];
  private readonly dir = mkdtempSync(join(tmpdir(), 'sse-sentinel-'));

  private constructor(
    public master: RedisServer,
    public replica: RedisServer,
    private readonly options: SentinelSetupOptions,
  ) {}

  static async start(options: SentinelSetupOptions = {}): Promise<SentinelSetup> {
    const auth = options.password ? ['--requirepass', options.password, '--masterauth', options.password] : [];
    const master = await RedisServer.start(auth);
    const replica = await RedisServer.start([...auth, '--replicaof', '127.0.0.1', String(master.port)]);
    const setup = new SentinelSetup(master, replica, options);
    try {
      for (let i = 0; i < 3; i++) await setup.startSentinel(i);
      await setup.waitUntilReady();
    } catch (err) {
      await setup.stop();
      throw err;
    }
    return setup;
  }

  /** `host:port` of every sentinel, for --redis-sentinel. */
  get sentinels(): string[] {
    return this.sentinelPorts.map((port) => `127.0.0.1:${port}`);
  }

  private async startSentinel(i: number): Promise<void> {
    const port = await freePort();
    const conf = join(this.dir, `sentinel-${i}.conf`);
    const { password, sentinelPassword } = this.options;
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        'daemonize no',
        'loglevel warning',
        `dir ${this.dir}`,
        `sentinel monitor ${this.name} 127.0.0.1 ${this.master.port} 2`,
        `sentinel down-after-milliseconds ${this.name} 1000`,
        `sentinel failover-timeout ${this.name} 5000`,
        `sentinel parallel-syncs ${this.name} 1`,
        ...(password ? [`sentinel auth-pass ${this.name} ${password}`] : []),
        ...(sentinelPassword ? [`requirepass ${sentinelPassword}`, `sentinel sentinel-pass ${sentinelPassword}`] : []),
        '',
      ].join('\n'),
    );
    const proc = spawn('redis-sentinel', [conf], { stdio: 'ignore' });
    this.procs.push(proc);
    this.sentinelPorts.push(port);
    await waitFor(async () => (await this.ask(port, 'PING')).startsWith('+PONG'), {
      timeout: 10_000,
      what: `redis-sentinel on port ${port}`,
    });
  }

  /** Every sentinel knows the other two and the replica, and the replica is in sync. */
  private async waitUntilReady(): Promise<void> {
    await waitFor(
      async () => {
        for (const port of this.sentinelPorts) {
          if (!(await this.ask(port, 'SENTINEL', 'CKQUORUM', this.name)).startsWith('+OK 3 usable')) return false;
          const master = (await this.ask(port, 'SENTINEL', 'MASTER', this.name)).split('\r\n');
          if (master[master.indexOf('num-slaves') + 2] !== '1') return false;
        }
        return (await this.info(this.replica.port)).includes('master_link_status:up');
      },
      { timeout: 20_000, interval: 100, what: 'three sentinels that know each other and the replica' },
    );
  }

  /** The address the sentinels name as master now. */
  async masterPort(): Promise<number> {
    const reply = await this.ask(this.sentinelPorts[0] as number, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.name);
    return Number(reply.split('\r\n')[4]);
  }

  /** Waits until a sentinel names `port` as master. */
  async waitForMaster(port: number, timeout = 20_000): Promise<void> {
    await waitFor(async () => (await this.masterPort()) === port, { timeout, interval: 50, what: `master on ${port}` });
  }

  /**
   * The failover both Sentinel suites run: a hub on these sentinels whose
   * master is SIGKILLed mid-stream, until the replica is promoted.
   */
  failoverScenario(
    options: HubOptions,
    afterPromotion?: (s: SentinelSetup) => Promise<void>,
    settle = 0,
  ): FailoverScenario {
    return {
      hubOptions: { redisSentinel: { name: this.name, sentinels: this.sentinels }, ...options },
      kill: () => this.master.stop('SIGKILL'),
      promoted: () => this.waitForMaster(this.replica.port),
      afterPromotion: afterPromotion && (() => afterPromotion(this)),
      settle,
    };
  }

  /** INFO replication of a data node. */
  info(port: number): Promise<string> {
    const auth = this.options.password ? ['AUTH', this.options.password] : undefined;
    return rawCommand(port, ['INFO', 'replication'], auth);
  }

  /** One command to a sentinel (authenticated when it has a password). */
  ask(port: number, ...args: string[]): Promise<string> {
    const auth = this.options.sentinelPassword ? ['AUTH', this.options.sentinelPassword] : undefined;
    return rawCommand(port, args, auth);
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.procs.map(
        (proc) =>
          new Promise<void>((resolve) => {
            if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
            proc.once('exit', () => resolve());
            proc.kill('SIGKILL');
          }),
      ),
    );
    await Promise.all([this.master.stop(), this.replica.stop()]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Sends one command (after AUTH when given) and returns its raw reply (flat replies only). */
function rawCommand(port: number, args: string[], auth?: string[]): Promise<string> {
  const encode = (a: string[]): string =>
    `*${a.length}\r\n${a.map((x) => `$${Buffer.byteLength(x)}\r\n${x}\r\n`).join('')}`;
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    let skip = auth === undefined ? 0 : 1;
    socket.setTimeout(3000, () => socket.destroy(new Error('command timed out')));
    socket.on('connect', () => socket.write((auth ? encode(auth) : '') + encode(args)));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (skip > 0 && reply.includes('\r\n')) {
        reply = reply.slice(reply.indexOf('\r\n') + 2);
        skip--;
      }
      if (skip === 0 && isComplete(reply)) {
        socket.end();
        resolve(reply);
      }
    });
    socket.on('error', reject);
  });
}
