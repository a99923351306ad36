#!/usr/bin/env node
// What --redis-wait-replicas costs per event: publishWithHistory on a master
// with one replica, without and with WAIT 1, in the same run.
//
//   npm run build && node bench/redis-wait.mjs [--events 2000]
//
// Two figures per setting: one event at a time (each caller waits for the
// previous: the latency one sendEvent sees) and 64 in flight (group commit:
// one WAIT per round of queued writes). Each setting runs twice, alternating;
// the second pass is reported.
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './harness.mjs';

const require = createRequire(import.meta.url);
const { RedisBroker } = require('../dist/cjs/index.js');
const args = process.argv.slice(2);
const EVENTS = Number(args[args.indexOf('--events') + 1] || 2000) || 2000;
const run = promisify(execFile);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(join(tmpdir(), 'sse-bench-wait-'));
const [masterPort, replicaPort] = [await freePort(), await freePort()];
const common = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'];
const master = spawn('redis-server', ['--port', String(masterPort), ...common], { stdio: 'ignore' });
const replica = spawn(
  'redis-server',
  ['--port', String(replicaPort), ...common, '--replicaof', '127.0.0.1', String(masterPort)],
  { stdio: 'ignore' },
);
try {
  for (;;) {
    const info = await run('redis-cli', ['-p', String(replicaPort), 'INFO', 'replication']).catch(() => ({
      stdout: '',
    }));
    if (info.stdout.includes('master_link_status:up')) break;
    await sleep(50);
  }
  const limits = { size: 1000, ttl: 3600 };
  const results = {};
  // Twice each, alternating; the second pass is kept (the first warms the JIT and Redis up).
  for (const [pass, waitReplicas] of [
    [1, 0],
    [1, 1],
    [2, 0],
    [2, 1],
  ]) {
    const broker = new RedisBroker({ url: `redis://127.0.0.1:${masterPort}`, waitReplicas, waitTimeout: 5000 });
    await broker.ready();
    const event = { event: 'message', data: 'x'.repeat(100) };
    for (let i = 0; i < 200; i++) await broker.publishWithHistory('warm', event, limits); // warm-up
    let start = process.hrtime.bigint();
    for (let i = 0; i < EVENTS; i++) await broker.publishWithHistory('all', event, limits);
    const serialUs = Number(process.hrtime.bigint() - start) / 1000 / EVENTS;
    start = process.hrtime.bigint();
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next++ < EVENTS) await broker.publishWithHistory('all', event, limits);
      }),
    );
    const concurrentUs = Number(process.hrtime.bigint() - start) / 1000 / EVENTS;
    await broker.close();
    results[waitReplicas] = { serialUs, concurrentUs };
    if (pass === 1) continue;
    console.log(
      `wait-replicas ${waitReplicas}: one at a time ${serialUs.toFixed(1)} µs/event, 64 in flight ${concurrentUs.toFixed(1)} µs/event`,
    );
  }
  console.log(
    `WAIT 1 / no WAIT: one at a time ${(results[1].serialUs / results[0].serialUs).toFixed(2)}x, ` +
      `64 in flight ${(results[1].concurrentUs / results[0].concurrentUs).toFixed(2)}x`,
  );
} finally {
  master.kill('SIGKILL');
  replica.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
