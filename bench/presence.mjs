#!/usr/bin/env node
// The cost of one presence refresh at 10k connections on 1,000 channels
// (docs/operations.md "What presence costs"), against a private redis-server:
// a rewrite (the record changed), an extend (it did not), and the reads
// behind hub.channels() and hub.presence(channel). Each is shown next to a
// PUBLISH of one small event measured in the same run, as a ratio.
//
//   node scripts/build.mjs --js-only && node bench/presence.mjs [--connections N] [--channels N]
import { spawn } from 'node:child_process';
import net from 'node:net';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { createClient } = require('redis');
const { RedisPresence, recordArgs } = require(join(root, 'dist', 'cjs', 'brokers', 'redis-presence.js'));
const { LocalPresence } = require(join(root, 'dist', 'cjs', 'core', 'presence.js'));

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const CONNECTIONS = arg('connections', 10_000);
const CHANNELS = arg('channels', 1000);
const ROUNDS = 40;

const port = await new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});
const redis = spawn(
  'redis-server',
  ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
  {
    stdio: 'ignore',
  },
);
// Never leave the private redis-server behind, whatever happens below.
process.on('exit', () => redis.kill('SIGKILL'));
const client = createClient({ url: `redis://127.0.0.1:${port}` });
client.on('error', () => undefined);
for (let i = 0; ; i++) {
  try {
    await client.connect();
    break;
  } catch {
    if (i > 100) throw new Error('redis-server did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
}

// 10k connections on 1,000 channels, session mode: each connection its own user.
const local = new LocalPresence();
for (let i = 0; i < CONNECTIONS; i++) {
  local.attached({ channels: [`channel-${i % CHANNELS}`] }, `user-${i}`);
}
const run = (args) => client.sendCommand(args);
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const writer = new RedisPresence(local, { run, prefix: '', ttl: 15_000, logger: silent, ready: () => true });
const reader = new RedisPresence(new LocalPresence(), {
  run,
  prefix: '',
  ttl: 15_000,
  logger: silent,
  ready: () => true,
});
writer.stop = () => undefined;

async function median(fn) {
  const times = [];
  for (let i = 0; i < ROUNDS; i++) {
    const start = process.hrtime.bigint();
    await fn(i);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}
async function serverMicros(fn) {
  await run(['CONFIG', 'RESETSTAT']);
  await fn();
  const info = await run(['INFO', 'commandstats']);
  const line = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(info);
  return line ? Number(line[2]) / Number(line[1]) : NaN;
}

const publish = await median(() => run(['PUBLISH', 'bench', '["message","{\\"n\\":1}"]']));
const snapshotCpu = await median(() => recordArgs(local.snapshot()));
const bytes = recordArgs(local.snapshot()).reduce((n, s) => n + Buffer.byteLength(s), 0);
let now = Date.now();
const rewrite = await median(async () => {
  local.version++;
  await writer.refresh((now += 1000));
});
const rewriteServer = await serverMicros(async () => {
  for (let i = 0; i < ROUNDS; i++) {
    local.version++;
    await writer.refresh((now += 1000));
  }
});
const extend = await median(() => writer.refresh((now += 6000)));
const extendServer = await serverMicros(async () => {
  for (let i = 0; i < ROUNDS; i++) await writer.refresh((now += 6000));
});
const readAll = await median(() => reader.readOthers());
const readOne = await median((i) => reader.readOthers(`channel-${i}`));
const check = await reader.readOthers();
const memory = await run(['MEMORY', 'USAGE', `{sse-hub:presence}:${writer.id}`]);

const row = (name, ms, note = '') =>
  console.log(
    `${name.padEnd(34)} ${ms.toFixed(3).padStart(8)} ms  ${(ms / publish).toFixed(1).padStart(6)}× PUBLISH  ${note}`,
  );
console.log(`presence refresh cost: ${CONNECTIONS} connections on ${CHANNELS} channels, ${CONNECTIONS} users`);
console.log(`(median of ${ROUNDS}; node ${process.version}; round trips on loopback)`);
row('PUBLISH one event (baseline)', publish);
row('snapshot + encode (node CPU)', snapshotCpu, `${(bytes / 1024).toFixed(0)} KiB of arguments`);
row('rewrite (record changed)', rewrite, `redis ${(rewriteServer / 1000).toFixed(2)} ms of server time`);
row('extend TTL (unchanged)', extend, `redis ${(extendServer / 1000).toFixed(3)} ms of server time`);
row('read all channels (channels())', readAll, `${check.channels.size} channels, ${check.processes} process`);
row('read one channel (presence())', readOne);
console.log(`record size in redis: ${(Number(memory) / 1024).toFixed(0)} KiB`);

await client.close();
redis.kill('SIGKILL');
