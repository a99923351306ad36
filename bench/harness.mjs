// What the bench scripts share (run.mjs, heap.mjs): the fresh build of
// sse-hub, the C load client, a private redis-server, and server processes
// started with the hard descriptor limit and read back by their listening line.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const here = dirname(fileURLToPath(import.meta.url));
export const root = join(here, '..');

/**
 * sse-hub's sources → out/dist/cjs with esbuild, as scripts/build.mjs does
 * (without types). `src` defaults to this checkout's; another one (e.g. a
 * worktree of another commit) measures a before/after in one run.
 */
export async function buildHub(out, src = join(root, 'src')) {
  const { build } = await import('esbuild');
  const listTs = (dir) =>
    readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return listTs(path);
      return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : [];
    });
  rmSync(join(out, 'dist'), { recursive: true, force: true });
  await build({
    entryPoints: listTs(src),
    outbase: src,
    outdir: join(out, 'dist', 'cjs'),
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    logLevel: 'warning',
  });
  writeFileSync(join(out, 'dist', 'cjs', 'package.json'), '{ "type": "commonjs" }\n');
}

/** gcc -O2 bench/loadgen.c → out/loadgen; returns its path. */
export function compileLoadgen(out) {
  mkdirSync(out, { recursive: true });
  const bin = join(out, 'loadgen');
  execFileSync('gcc', ['-O2', '-o', bin, join(here, 'loadgen.c')], { stdio: 'inherit' });
  return bin;
}

/**
 * Runs the load client; resolves with its last stdout line. `onLine` sees
 * every stdout line as it comes (heap.mjs snapshots the server on the first).
 */
export function runLoadgen(bin, loadArgs, { onLine, timeout = 180_000, okCodes = [0] } = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(bin, loadArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let seen = 0;
    proc.stdout.on('data', (c) => {
      stdout += c;
      const lines = stdout.split('\n');
      for (; seen < lines.length - 1; seen++) onLine?.(lines[seen]);
    });
    proc.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeout);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      if (stderr) process.stderr.write(stderr);
      if (!okCodes.includes(code)) reject(new Error(`loadgen exited with ${code}: ${stderr}`));
      else resolve(stdout.trim().split('\n').pop());
    });
  });
}

/**
 * Starts `node [nodeArgs] serverArgs` with the hard `ulimit -n` (10k sockets
 * need more than 1024) and waits for its "listening on" line.
 */
export async function startServer(serverArgs, { redisUrl, nodeArgs = [], cwd, settleMs = 300, env = {} } = {}) {
  const proc = spawn(
    'sh',
    ['-c', 'ulimit -n "$(ulimit -Hn)"; exec "$@"', 'sh', process.execPath, ...nodeArgs, ...serverArgs],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd,
      env: { ...process.env, BENCH_REDIS_URL: redisUrl, REDIS_URL: '', SSE_REDIS_URL: '', ...env },
    },
  );
  let output = '';
  proc.stdout.on('data', (c) => (output += c));
  proc.stderr.on('data', (c) => (output += c));
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const port = await new Promise((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`server did not listen:\n${output}`)), 15_000);
    const check = () => {
      const match = /listening on http:\/\/[\d.]+:(\d+)/.exec(output);
      if (match) {
        clearTimeout(deadline);
        resolve(Number(match[1]));
      } else if (proc.exitCode !== null) {
        clearTimeout(deadline);
        reject(new Error(`server exited:\n${output}`));
      } else setTimeout(check, 20);
    };
    check();
  });
  // A moment for the process to settle after start-up before its RSS is read.
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  return {
    port,
    pid: proc.pid,
    exited,
    output: () => output,
    pids: () => [proc.pid, ...childrenOf(proc.pid)],
    signal: (name) => proc.kill(name),
    async stop(graceMs = 8000) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

/** Resident set size of a process in bytes, 0 once it is gone. */
export function rssOf(pid) {
  try {
    const [, resident] = readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ').map(Number);
    return resident * 4096;
  } catch {
    return 0;
  }
}

export function childrenOf(pid) {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return kids.map(Number).flatMap((kid) => [kid, ...childrenOf(kid)]);
  } catch {
    return [];
  }
}

/** A private redis-server on a free loopback port (never 6379). */
export async function startRedis(extraArgs = []) {
  const port = await freePort();
  const proc = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--loglevel',
      'warning',
      // A subscriber that falls behind must not be cut off mid-measure.
      '--client-output-buffer-limit',
      'pubsub 0 0 0',
      ...extraArgs,
    ],
    { stdio: 'ignore' },
  );
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (await ping(port)) break;
    if (Date.now() > deadline) throw new Error('redis-server did not start');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { port, pid: proc.pid, url: `redis://127.0.0.1:${port}`, kill: (signal) => proc.kill(signal) };
}

function ping(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      socket.destroy();
      resolve(String(d).startsWith('+PONG'));
    });
    socket.on('error', () => resolve(false));
  });
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}
