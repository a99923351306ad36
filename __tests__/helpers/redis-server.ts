// A private redis-server for one suite: spawned on a free loopback port,
// awaited with PING (not a sleep), killable and restartable on the same port.
// A redis-server that exits while starting fails at once with its output; one
// that never answers is killed when the wait gives up, never left running.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports';
import { waitFor } from './wait-for';

export class RedisServer {
  readonly port: number;
  private proc: ChildProcess | undefined;

  /** Extra redis-server arguments (replicaof, requirepass, cluster-enabled …), kept across restarts. */
  readonly extraArgs: string[];
  private readonly dir = mkdtempSync(join(tmpdir(), 'sse-redis-'));

  private constructor(port: number, extraArgs: string[]) {
    this.port = port;
    this.extraArgs = extraArgs;
  }

  static async start(extraArgs: string[] = [], port?: number): Promise<RedisServer> {
    const server = new RedisServer(port ?? (await freePort()), extraArgs);
    await server.restart();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Starts redis-server (again) on the same port and waits until it answers PING. */
  async restart(): Promise<void> {
    if (this.running) return;
    const proc = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
        '--loglevel',
        'warning',
        // A replica's full sync writes dump.rdb into --dir: keep it out of the repository.
        '--dir',
        this.dir,
        ...this.extraArgs,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.proc = proc;
    let output = '';
    proc.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    proc.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    const died = new Promise<never>((_resolve, reject) => {
      proc.once('error', (err) => reject(new Error(`cannot start redis-server: ${err.message}`)));
      proc.once('exit', (code, signal) =>
        reject(new Error(`redis-server on port ${this.port} exited while starting (${code ?? signal}):\n${output}`)),
      );
    });
    try {
      await Promise.race([
        waitFor(() => this.ping(), { timeout: 10_000, what: `redis-server on port ${this.port}` }),
        died,
      ]);
    } catch (err) {
      proc.kill('SIGKILL');
      throw err;
    } finally {
      died.catch(() => undefined); // a later exit (stop()) is not an error
    }
  }

  /** Kills redis-server (SIGKILL by default: a crash, not a shutdown) and waits for it to exit. */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const proc = this.proc;
    if (proc === undefined || !this.running) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill(signal);
    await exited;
  }

  /** Sends one inline command and returns the raw reply (e.g. `PUBSUB NUMSUB all`). */
  command(...args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(this.port, '127.0.0.1');
      const encoded = encode(args);
      let reply = '';
      socket.setTimeout(3000, () => socket.destroy(new Error('redis command timed out')));
      socket.on('connect', () => socket.write(encoded));
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

  /**
   * Sends several commands in one write, so redis-server runs them back to
   * back with nothing in between; resolves with the raw replies once there is
   * one per command (simple replies only: integers, +OK, errors).
   */
  pipeline(...commands: string[][]): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(this.port, '127.0.0.1');
      let reply = '';
      socket.setTimeout(3000, () => socket.destroy(new Error('redis pipeline timed out')));
      socket.on('connect', () => socket.write(commands.map(encode).join('')));
      socket.on('data', (chunk) => {
        reply += chunk.toString();
        if (reply.split('\r\n').length > commands.length) {
          socket.end();
          resolve(reply);
        }
      });
      socket.on('error', reject);
    });
  }

  /** PUBSUB NUMSUB for one channel. */
  async numsub(channel: string): Promise<number> {
    const reply = await this.command('PUBSUB', 'NUMSUB', channel);
    const lines = reply.split('\r\n');
    return Number(lines[lines.length - 2]?.replace(':', ''));
  }

  async publish(channel: string, message: string): Promise<number> {
    const reply = await this.command('PUBLISH', channel, message);
    return Number(reply.slice(1));
  }

  private async ping(): Promise<boolean> {
    try {
      // With requirepass, NOAUTH still proves the server is up.
      const reply = await this.command('PING');
      return reply.startsWith('+PONG') || reply.startsWith('-NOAUTH');
    } catch {
      return false;
    }
  }
}

/** One command in RESP: an array of bulk strings. */
function encode(args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/** True once a RESP reply is whole (enough for the replies the tests read). */
export function isComplete(reply: string): boolean {
  if (!reply.endsWith('\r\n')) return false;
  if (reply[0] === '$') {
    const len = Number(reply.slice(1, reply.indexOf('\r\n')));
    return len < 0 || Buffer.byteLength(reply) >= reply.indexOf('\r\n') + 2 + len + 2;
  }
  if (reply[0] !== '*') return true;
  const count = Number(reply.slice(1, reply.indexOf('\r\n')));
  // Arrays of bulk strings and integers: count the elements after the header.
  let rest = reply.slice(reply.indexOf('\r\n') + 2);
  for (let i = 0; i < count; i++) {
    if (rest === '') return false;
    if (rest[0] === '$') {
      const len = Number(rest.slice(1, rest.indexOf('\r\n')));
      const start = rest.indexOf('\r\n') + 2;
      if (len < 0) rest = rest.slice(start);
      else if (rest.length < start + len + 2) return false;
      else rest = rest.slice(start + len + 2);
    } else {
      const end = rest.indexOf('\r\n');
      if (end === -1) return false;
      rest = rest.slice(end + 2);
    }
  }
  return true;
}
