// A private nginx for one suite: `Nginx.start(serverBlock)` (or
// `startNginx(serverBlock)`) writes a config with that block as the body of
// `server { listen <free port>; ... }`, keeps every pid/log/temp path in a
// temp dir, runs nginx in the foreground on a free loopback port and waits
// until it accepts connections (not a sleep). `nginxBlockFrom(markdownFile)`
// returns a doc's first ```nginx block, so tests run the documented config.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports';
import { waitFor } from './wait-for';

/** The nginx binary (Debian's); give it to describeWithTools. */
export const NGINX_PATH = '/usr/sbin/nginx';

/** The first fenced ```nginx block of a markdown file, as text. */
export function nginxBlockFrom(markdownFile: string): string {
  const block = /```nginx\n([\s\S]*?)```/.exec(readFileSync(markdownFile, 'utf8'))?.[1];
  if (block === undefined) throw new Error(`no \`\`\`nginx block in ${markdownFile}`);
  return block;
}

export interface NginxOptions {
  /** Extra directives at the `http {}` level (e.g. `upstream` blocks). */
  http?: string;
}

export interface RunningNginx {
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** The generated nginx.conf, for failure messages. */
  config: string;
  /** nginx's error log so far. */
  errorLog(): string;
  /** Stops nginx (SIGTERM, then SIGKILL after 3 s) and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts nginx with `serverBlock` as the body of its one `server {}` (locations,
 * proxy settings). Use `proxy_pass http://127.0.0.1:<upstream port>` inside.
 */
export async function startNginx(serverBlock: string, options: NginxOptions = {}): Promise<RunningNginx> {
  const dir = mkdtempSync(join(tmpdir(), 'sse-hub-nginx-'));
  const port = await freePort();
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const config = `
${asRoot ? 'user root;' : ''}
daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  ${options.http ?? ''}
  server {
    listen 127.0.0.1:${port};
    ${serverBlock}
  }
}
`;
  const confPath = join(dir, 'nginx.conf');
  writeFileSync(confPath, config);
  const proc: ChildProcess = spawn(NGINX_PATH, ['-c', confPath, '-p', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    proc.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const errorLog = (): string => {
    try {
      return readFileSync(join(dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  };
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (!exited) {
        proc.kill('SIGTERM');
        const force = setTimeout(() => proc.kill('SIGKILL'), 3000);
        await exit;
        clearTimeout(force);
      }
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };
  try {
    await waitFor(
      () => {
        if (exited) throw new Error(`nginx exited: ${stderr}${errorLog()}\n${config}`);
        return accepts(port);
      },
      { timeout: 10_000, what: `nginx on port ${port}` },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, url: `http://127.0.0.1:${port}`, config, errorLog, stop };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Class form of startNginx(): `const nginx = await Nginx.start(block); ... await nginx.stop()`. */
export class Nginx implements RunningNginx {
  private constructor(private readonly running: RunningNginx) {}

  static async start(serverBlock: string, options: NginxOptions = {}): Promise<Nginx> {
    return new Nginx(await startNginx(serverBlock, options));
  }

  get port(): number {
    return this.running.port;
  }

  get url(): string {
    return this.running.url;
  }

  get config(): string {
    return this.running.config;
  }

  errorLog(): string {
    return this.running.errorLog();
  }

  stop(): Promise<void> {
    return this.running.stop();
  }
}
