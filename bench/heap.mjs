#!/usr/bin/env node
// Where the memory of idle streams goes, per mount: opens N idle streams
// (bench/loadgen.c, idle mode) against each server, takes a V8 heap snapshot
// of it (--heapsnapshot-signal) while they are open, and prints the live heap
// per stream grouped by constructor (self sizes), with each mount's surplus
// over sse-runserver. Not part of `npm run bench`: snapshots of 10k streams
// take a while and ~200 MB of disk each.
//
//   node bench/heap.mjs [--conns 10000] [--servers sse-hub,mw-http,express5,express4] [--top 25]
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { buildHub, compileLoadgen, here, runLoadgen, startRedis, startServer } from './harness.mjs';

const args = Object.fromEntries(
  process.argv
    .slice(2)
    .join(' ')
    .split('--')
    .filter(Boolean)
    .map((a) => a.trim().split(/\s+/)),
);
const conns = Number(args.conns ?? 10000);
const top = Number(args.top ?? 25);
const out = join(here, 'out', 'heap');
const dist = join(out, 'dist', 'cjs');
const MOUNTS = {
  ceiling: { argv: [join(here, 'servers', 'ceiling.mjs')] },
  'sse-hub': { argv: [join(dist, 'bin', 'sse-runserver.js'), '--port', '0', '--workers', '1'], redisFlag: true },
  'mw-http': { argv: [join(here, 'servers', 'mount.mjs'), 'http', join(dist, 'index.js')] },
  express5: { argv: [join(here, 'servers', 'mount.mjs'), 'express5', join(dist, 'index.js')], path: '/sse?channels=' },
  express4: { argv: [join(here, 'servers', 'mount.mjs'), 'express4', join(dist, 'index.js')], path: '/sse?channels=' },
};
const servers = (args.servers ?? 'sse-hub,mw-http,express5,express4').split(',');

mkdirSync(out, { recursive: true });
await buildHub(out);
const loadgen = compileLoadgen(out);
const redis = await startRedis();
const summaries = {};
try {
  for (const name of servers) {
    const mount = MOUNTS[name];
    const dir = join(out, name);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    const argv = mount.redisFlag ? [...mount.argv, '--redis', redis.url] : mount.argv;
    const server = await startServer(argv, {
      redisUrl: redis.url,
      nodeArgs: ['--heapsnapshot-signal=SIGUSR2'],
      cwd: dir,
    });
    let figures;
    let snapshot;
    await runLoadgen(
      loadgen,
      [
        '--port',
        String(server.port),
        '--conns',
        String(conns),
        '--mode',
        'idle',
        '--settle',
        '1500',
        '--hold',
        '120000',
        '--pids',
        String(server.pid),
        ...(mount.path ? ['--path', mount.path] : []),
      ],
      {
        onLine: (line) => {
          figures = JSON.parse(line);
          server.signal('SIGUSR2');
          snapshot = waitForSnapshot(dir).then(async (file) => {
            await server.stop();
            return file;
          });
        },
      },
    );
    const file = await snapshot;
    summaries[name] = { rssPerConn: figures.rssPerConn, ...summarise(file) };
    if (!('keep' in args)) rmSync(file);
    console.log(
      `${name}: RSS ${(figures.rssPerConn / 1024).toFixed(2)} KiB/stream, live heap ${(summaries[name].total / conns / 1024).toFixed(2)} KiB/stream`,
    );
  }
} finally {
  redis.kill('SIGKILL');
}
report();
console.log(
  `\nmachine: ${os.cpus().length} × ${os.cpus()[0]?.model}, Node ${process.version}; load average ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);

function kib(bytes) {
  return (bytes / 1024).toFixed(2);
}

/** The snapshot file, once V8 has finished writing it (its size stops changing). */
async function waitForSnapshot(dir) {
  let last = -1;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const file = readdirSync(dir).find((f) => f.endsWith('.heapsnapshot'));
    if (file === undefined) continue;
    const size = statSync(join(dir, file)).size;
    if (size === last && size > 0) return join(dir, file);
    last = size;
  }
}

/** Self size and count per "type:name" (objects by constructor, closures by function name). */
function summarise(file) {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  const { node_fields: fields, node_types: types } = snap.snapshot.meta;
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const typeNames = types[0];
  const groups = new Map();
  let total = 0;
  const { nodes, strings } = snap;
  for (let i = 0; i < nodes.length; i += width) {
    const type = typeNames[nodes[i + typeAt]];
    const size = nodes[i + sizeAt];
    total += size;
    const name =
      type === 'string' || type === 'sliced string' || type === 'concatenated string' ? '' : strings[nodes[i + nameAt]];
    const key = `${type}:${name.slice(0, 60)}`;
    const group = groups.get(key);
    if (group === undefined) groups.set(key, { count: 1, size });
    else {
      group.count++;
      group.size += size;
    }
  }
  return { total, groups };
}

function report() {
  const base = summaries['sse-hub'];
  for (const [name, s] of Object.entries(summaries)) {
    console.log(
      `\n## ${name}: live heap ${kib(s.total / conns)} KiB per stream, RSS ${kib(s.rssPerConn)} KiB per stream`,
    );
    const rows = [...s.groups.entries()].map(([key, g]) => {
      const b = base?.groups.get(key) ?? { count: 0, size: 0 };
      return {
        key,
        perConn: g.size / conns,
        count: g.count / conns,
        surplus: (g.size - b.size) / conns,
        extra: (g.count - b.count) / conns,
      };
    });
    const sorted =
      name === 'sse-hub' || base === undefined
        ? rows.sort((a, b) => b.perConn - a.perConn)
        : rows.sort((a, b) => b.surplus - a.surplus);
    console.log('| type:constructor | bytes/stream | objects/stream | bytes over sse-hub | objects over sse-hub |');
    console.log('|---|---:|---:|---:|---:|');
    for (const r of sorted.slice(0, top)) {
      console.log(
        `| ${r.key} | ${r.perConn.toFixed(0)} | ${r.count.toFixed(2)} | ${r.surplus.toFixed(0)} | ${r.extra.toFixed(2)} |`,
      );
    }
  }
}
