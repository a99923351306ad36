#!/usr/bin/env node
// Classic vs sharded pub/sub on a local 3-master Redis Cluster, side by side
// in one run: what ONE sse-runserver process delivers, and Redis's own CPU
// per published event (summed over the three masters, from /proc).
//
//   npm run build && node bench/redis-cluster.mjs [--seconds 4] [--rate 2000]
//
// Needs redis-server and redis-cli on the PATH (Linux /proc). Not part of
// npm test. For each mode: a fresh sse-runserver --redis-cluster [--pubsub
// sharded], 64 streams on 64 channels spread over the slots, then
//   1. a fixed rate (--rate events/s) for --seconds: Redis CPU per event;
//   2. as fast as the publisher goes (512 in flight) for --seconds: delivered events/s.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createCluster } from 'redis';
import { freePort } from './harness.mjs';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(args[i + 1]);
};
const SECONDS = opt('seconds', 4);
const RATE = opt('rate', 2000);
const CHANNELS = 64;
const ROOT = join(import.meta.dirname, '..');
const RUNSERVER = join(ROOT, 'dist', 'cjs', 'bin', 'sse-runserver.js');
const TICKS = 100; // USER_HZ on Linux

const run = promisify(execFile);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function isFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
/** CPU seconds (user + system) of a process so far. */
function cpu(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}
async function until(check, what, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function startCluster() {
  const dir = mkdtempSync(join(tmpdir(), 'sse-bench-cluster-'));
  const ports = [];
  while (ports.length < 3) {
    const p = await freePort();
    if (p < 55_000 && (await isFree(p + 10_000))) ports.push(p);
  }
  const procs = ports.map((port) =>
    spawn(
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
        '--dir',
        dir,
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--loglevel',
        'warning',
      ],
      { stdio: 'ignore' },
    ),
  );
  for (const port of ports) {
    await until(async () => (await run('redis-cli', ['-p', String(port), 'PING'])).stdout.includes('PONG'), 'redis');
  }
  await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-yes']);
  for (const port of ports) {
    await until(
      async () => (await run('redis-cli', ['-p', String(port), 'CLUSTER', 'INFO'])).stdout.includes('cluster_state:ok'),
      'cluster ok',
    );
  }
  return {
    ports,
    pids: procs.map((p) => p.pid),
    urls: ports.map((p) => `redis://127.0.0.1:${p}`),
    stop() {
      for (const p of procs) p.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startServer(urls, pubsub) {
  const proc = spawn(
    process.execPath,
    [RUNSERVER, '--port', '0', '--workers', '1', '--redis-cluster', urls.join(','), '--pubsub', pubsub],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout.on('data', (c) => (out += c));
  proc.stderr.on('data', (c) => (out += c));
  await until(async () => /listening on http:\/\/[\d.]+:(\d+)/.test(out), 'sse-runserver');
  const port = Number(/listening on http:\/\/[\d.]+:(\d+)/.exec(out)[1]);
  return { proc, port };
}

/** 64 streams, one per channel; counts `data:` lines without parsing more. */
async function openStreams(port) {
  const counter = { frames: 0, requests: [] };
  for (let i = 0; i < CHANNELS; i++) {
    await new Promise((resolve, reject) => {
      const req = http.get(`http://127.0.0.1:${port}/?channels=ch-${i}`, (res) => {
        res.on('data', (chunk) => {
          let at = chunk.indexOf('data:');
          while (at !== -1) {
            counter.frames++;
            at = chunk.indexOf('data:', at + 5);
          }
        });
        resolve();
      });
      req.on('error', reject);
      counter.requests.push(req);
    });
  }
  return counter;
}

async function measure(mode, cluster) {
  const server = await startServer(cluster.urls, mode);
  const streams = await openStreams(server.port);
  const client = createCluster({ rootNodes: cluster.urls.map((url) => ({ url })) });
  client.on('error', () => undefined);
  await client.connect();
  const publish = (i, seq) =>
    (mode === 'sharded' ? client.sPublish : client.publish).call(client, `ch-${i}`, `["message","${seq}"]`);
  // Every stream subscribed: one event per channel arrives.
  await until(async () => {
    const before = streams.frames;
    await Promise.all(Array.from({ length: CHANNELS }, (_, i) => publish(i, 'warm')));
    await sleep(100);
    return streams.frames - before === CHANNELS;
  }, 'every subscription');

  // 1. Fixed rate: Redis CPU per published event.
  const redisBefore = cluster.pids.map(cpu);
  const serverBefore = cpu(server.proc.pid);
  let sent = 0;
  const framesBefore = streams.frames;
  const start = Date.now();
  while (Date.now() - start < SECONDS * 1000) {
    const due = Math.floor(((Date.now() - start) / 1000) * RATE) - sent;
    const batch = [];
    for (let k = 0; k < due; k++, sent++) batch.push(publish(sent % CHANNELS, sent));
    await Promise.all(batch);
    await sleep(5);
  }
  await until(async () => streams.frames - framesBefore >= sent, 'the fixed-rate events', 10_000).catch(
    () => undefined,
  );
  const redisCpu = cluster.pids.map((pid, i) => cpu(pid) - redisBefore[i]);
  const fixed = {
    rate: Math.round(sent / SECONDS),
    delivered: streams.frames - framesBefore,
    sent,
    redisCpuUsPerEvent: (redisCpu.reduce((a, b) => a + b, 0) / sent) * 1e6,
    perNodeUs: redisCpu.map((c) => Math.round((c / sent) * 1e6 * 10) / 10),
    serverCpuUsPerEvent: ((cpu(server.proc.pid) - serverBefore) / sent) * 1e6,
  };

  // 2. As fast as it goes: 512 publishes in flight.
  const maxFramesBefore = streams.frames;
  const maxServerBefore = cpu(server.proc.pid);
  const maxRedisBefore = cluster.pids.map(cpu);
  let maxSent = 0;
  const maxStart = Date.now();
  const worker = async () => {
    while (Date.now() - maxStart < SECONDS * 1000) await publish(maxSent % CHANNELS, maxSent++);
  };
  await Promise.all(Array.from({ length: 512 }, worker));
  const elapsed = (Date.now() - maxStart) / 1000;
  const maxDelivered = streams.frames - maxFramesBefore;
  const max = {
    published: Math.round(maxSent / elapsed),
    delivered: Math.round(maxDelivered / elapsed),
    serverCpu: (cpu(server.proc.pid) - maxServerBefore) / elapsed,
    redisCpu: cluster.pids.map((pid, i) => Math.round(((cpu(pid) - maxRedisBefore[i]) / elapsed) * 100) / 100),
  };
  for (const req of streams.requests) req.destroy();
  await client.close();
  server.proc.kill('SIGTERM');
  await new Promise((r) => server.proc.once('exit', r));
  return { mode, fixed, max };
}

const cluster = await startCluster();
try {
  const results = [];
  for (const mode of ['classic', 'sharded']) results.push(await measure(mode, cluster));
  for (const r of results) {
    console.log(
      `${r.mode.padEnd(8)} fixed ${r.fixed.rate}/s: delivered ${r.fixed.delivered}/${r.fixed.sent}, ` +
        `Redis CPU ${r.fixed.redisCpuUsPerEvent.toFixed(1)} µs/event (per master ${r.fixed.perNodeUs.join(' / ')}), ` +
        `sse-hub CPU ${r.fixed.serverCpuUsPerEvent.toFixed(1)} µs/event | ` +
        `max: published ${r.max.published}/s, delivered ${r.max.delivered}/s, sse-hub CPU ${r.max.serverCpu.toFixed(2)} cores, ` +
        `Redis CPU ${r.max.redisCpu.join(' / ')} cores`,
    );
  }
  const [c, s] = results;
  console.log(
    `sharded/classic: Redis CPU per event ${(s.fixed.redisCpuUsPerEvent / c.fixed.redisCpuUsPerEvent).toFixed(2)}x, ` +
      `max delivered ${(s.max.delivered / c.max.delivered).toFixed(2)}x`,
  );
  console.log(JSON.stringify(results));
} finally {
  cluster.stop();
}
