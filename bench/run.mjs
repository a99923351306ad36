#!/usr/bin/env node
// `npm run bench`: sse-hub (standalone and mounted as middleware) against the
// plain-Node ceiling, the res.write baseline and better-sse, in the same run,
// driven by one C load client (bench/loadgen.c) through a private redis-server.
// Every figure that matters is a ratio to a server measured minutes apart on
// the same machine, so a noisy machine moves both sides.
//
//   node bench/run.mjs [--smoke] [--scenarios a,b] [--servers a,b] [--repeat N] [--no-build]
//                      [--storm-conns N] [--storm-history N] [--storm-flags "--drain-time 3000"]
//                      [--src DIR] [--out NAME]
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { buildHub, compileLoadgen, here, runLoadgen, startRedis, startServer } from './harness.mjs';
import { printStorm, runStorm } from './storm.mjs';

const args = parseArgs(process.argv.slice(2));
const smoke = args.smoke === true;
// Its own build and binaries: the repo's dist/ is rebuilt by every test run.
const out = join(here, 'out', args.out ? String(args.out) : smoke ? 'smoke' : 'full');
const hubBin = join(out, 'dist', 'cjs', 'bin', 'sse-runserver.js');

// Scenario sizes. Rates are chosen so the baseline stays well under one core,
// i.e. CPU per event is measured below saturation; `max` is a closed loop.
const FULL = { warmup: 1000, duration: 4000, settle: 1500 };
const SMOKE = { warmup: 200, duration: 500, settle: 200 };
const timing = smoke ? SMOKE : FULL;
const k = (n) => (smoke ? Math.min(n, 200) : n);
const SCENARIOS = [
  { name: 'broadcast-1k', what: 'one channel, 50 events/s', mode: 'broadcast', conns: k(1000), rate: 50 },
  { name: 'broadcast-10k', what: 'one channel, 5 events/s', mode: 'broadcast', conns: k(10000), rate: 5 },
  { name: 'unicast-10k', what: 'per-user channels, 5000 events/s', mode: 'unicast', conns: k(10000), rate: 5000 },
  { name: 'idle-10k', what: 'memory of idle streams', mode: 'idle', conns: k(10000) },
  { name: 'max-1k', what: 'one channel, as fast as it goes', mode: 'max', conns: k(1000), window: 8 },
  {
    name: 'workers-max-1k',
    what: 'sse-hub --workers 1 vs 2, as fast as it goes',
    mode: 'max',
    conns: k(1000),
    window: 8,
    servers: ['sse-hub', 'sse-hub-2w'],
    baseline: 'sse-hub',
  },
  {
    name: 'workers-broadcast-10k',
    what: 'sse-hub --workers 1 vs 2, one channel, 5 events/s',
    mode: 'broadcast',
    conns: k(10000),
    rate: 5,
    servers: ['sse-hub', 'sse-hub-2w'],
    baseline: 'sse-hub',
  },
  // The live load storm-10k runs under, alone: can this machine carry it at all, with any server?
  {
    name: 'storm-live-10k',
    what: "one channel, 100 events/s: storm-10k's live load on `all`, no storm",
    mode: 'broadcast',
    conns: k(10000),
    rate: 100,
    servers: ['ceiling', 'sse-hub'],
  },
  { name: 'storm-10k', what: 'reconnect storm', mode: 'storm', conns: k(10000), servers: ['sse-hub'] },
];
const hubIndex = join(out, 'dist', 'cjs', 'index.js');
const mount = (kind) => ({ script: join(here, 'servers', 'mount.mjs'), args: [kind, hubIndex] });
const SERVERS = {
  ceiling: { script: join(here, 'servers', 'ceiling.mjs') },
  baseline: { script: join(here, 'servers', 'baseline.mjs') },
  'sse-hub': { script: hubBin, hub: true, workers: 1 },
  'sse-hub-2w': { script: hubBin, hub: true, workers: 2 },
  'mw-http': mount('http'),
  express5: { ...mount('express5'), path: '/sse?channels=' },
  express4: { ...mount('express4'), path: '/sse?channels=' },
  'better-sse': { script: join(here, 'servers', 'better-sse.mjs') },
};
const DEFAULT_SERVERS = ['ceiling', 'baseline', 'sse-hub', 'mw-http', 'express5', 'express4', 'better-sse'];
/** The ratio rows every table prints: each server against the ceiling, and the mounts against sse-runserver. */
const MOUNTS = ['mw-http', 'express5', 'express4'];

const COLUMNS = [
  ['events/s', (f) => f.eventsPerSecond, 0],
  ['CPU µs/event', (f) => f.cpuUsPerEvent, 2],
  ['p50 ms', (f) => f.p50Ms, 2],
  ['p99 ms', (f) => f.p99Ms, 2],
  ['RSS KiB/conn', (f) => f.rssPerConn / 1024, 2],
];

const wantedScenarios = args.scenarios ? String(args.scenarios).split(',') : SCENARIOS.map((s) => s.name);
const wantedServers = args.servers ? String(args.servers).split(',') : null;
const repeat = Number(args.repeat ?? 1);

mkdirSync(out, { recursive: true });
if (args['no-build'] !== true) await buildHub(out, args.src ? join(String(args.src)) : undefined);
const loadgen = compileLoadgen(out);

const redis = await startRedis();
const started = new Date();
const load = os.loadavg();
const results = [];
let stormFailed = false;
try {
  for (const scenario of SCENARIOS.filter((s) => wantedScenarios.includes(s.name))) {
    if (scenario.mode === 'storm') {
      // --storm-conns N: the same storm at another size (the machine may not carry 10k).
      const stormConns = Number(args['storm-conns'] ?? scenario.conns);
      // Before/after the levers: --storm-flags "--drain-time 3000" adds a second run with them.
      const variants = [['sse-hub', []]];
      if (args['storm-flags'])
        variants.push([`sse-hub ${args['storm-flags']}`, String(args['storm-flags']).split(' ')]);
      // --storm-history N: events kept per channel (what the publisher's script trims to).
      const historySize = Number(args['storm-history'] ?? 1000);
      const runs = [];
      for (const [label, flags] of variants) {
        runs.push([label, await runStorm({ out, loadgen, redis, smoke, conns: stormConns, flags, historySize })]);
      }
      if (!printStorm(scenario.name, stormConns, runs, printTable)) stormFailed = true;
      results.push({ scenario, figures: Object.fromEntries(runs) });
      continue;
    }
    const servers = (scenario.servers ?? DEFAULT_SERVERS).filter((s) => !wantedServers || wantedServers.includes(s));
    const runs = Object.fromEntries(servers.map((s) => [s, []]));
    for (let i = 0; i < repeat; i++) {
      // Alternate the order between repeats so drift does not favour one side.
      const order = i % 2 === 0 ? servers : [...servers].reverse();
      for (const server of order) runs[server].push(await runOne(scenario, server));
    }
    const row = { scenario, figures: Object.fromEntries(servers.map((s) => [s, median(runs[s])])) };
    results.push(row);
    printScenario(row);
  }
} finally {
  redis.kill('SIGKILL');
}
printTargets(results);
const record = {
  date: started.toISOString(),
  machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${os.type()} ${os.release()}`,
  loadAverageAtStart: load.map((l) => l.toFixed(2)).join(' '),
  loadAverageAtEnd: os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' '),
  smoke,
  repeat,
  results: results.map((r) => ({ scenario: r.scenario.name, figures: r.figures })),
};
writeFileSync(join(out, smoke ? 'smoke.json' : 'last.json'), `${JSON.stringify(record, null, 2)}\n`);
console.log(`\nmachine: ${record.machine}; load average ${record.loadAverageAtStart} → ${record.loadAverageAtEnd}`);
// The storm's checker found events lost or twice, or a client that never came back.
if (stormFailed) {
  console.log('storm: FAILED (see its table)');
  process.exitCode = 1;
}

// ---------------------------------------------------------------------------

async function runOne(scenario, name) {
  const spec = SERVERS[name];
  const serverArgs = spec.hub
    ? [spec.script, '--port', '0', '--redis', redis.url, '--workers', String(spec.workers)]
    : [spec.script, ...(spec.args ?? [])];
  const server = await startServer(serverArgs, { redisUrl: redis.url, settleMs: smoke ? 50 : 300 });
  try {
    const loadArgs = [
      '--port',
      String(server.port),
      '--redis-port',
      String(redis.port),
      '--conns',
      String(scenario.conns),
      '--mode',
      scenario.mode,
      '--rate',
      String(scenario.rate ?? 0),
      '--window',
      String(scenario.window ?? 8),
      '--warmup',
      String(timing.warmup),
      '--duration',
      String(timing.duration),
      '--settle',
      String(timing.settle),
      '--pids',
      server.pids().join(','),
      ...(spec.path ? ['--path', spec.path] : []),
    ];
    const line = await runLoadgen(loadgen, loadArgs);
    const figures = JSON.parse(line);
    figures.pids = server.pids().length;
    return figures;
  } finally {
    await server.stop();
  }
}

function median(runs) {
  if (runs.length === 1) return runs[0];
  const keys = Object.keys(runs[0]);
  return Object.fromEntries(
    keys.map((key) => {
      const sorted = runs.map((r) => r[key]).sort((a, b) => a - b);
      return [key, sorted[Math.floor(sorted.length / 2)]];
    }),
  );
}

// --- output -------------------------------------------------------------------

function printScenario({ scenario, figures }) {
  const idle = scenario.mode === 'idle';
  const columns = idle ? COLUMNS.slice(4) : COLUMNS;
  const rows = [['server', ...columns.map(([title]) => title)]];
  for (const [name, f] of Object.entries(figures)) {
    rows.push([name, ...columns.map(([, get, digits]) => fmt(get(f), digits))]);
  }
  for (const [name, base] of ratioPairs(scenario, Object.keys(figures))) {
    rows.push([
      `${name} / ${base}`,
      ...columns.map(([, get]) => `×${fmt(ratio(get(figures[name]), get(figures[base])), 2)}`),
    ]);
  }
  const conns = Object.values(figures)[0]?.conns ?? scenario.conns;
  console.log(`\n## ${scenario.name} — ${conns} connections, ${scenario.what}`);
  printTable(rows);
}

/** [server, base] pairs: all against the ceiling, sse-hub against res.write, each mount against sse-runserver. */
function ratioPairs(scenario, names) {
  if (scenario.baseline !== undefined) {
    return names.filter((n) => n !== scenario.baseline).map((n) => [n, scenario.baseline]);
  }
  const has = (n) => names.includes(n);
  const pairs = has('ceiling') ? names.filter((n) => n !== 'ceiling').map((n) => [n, 'ceiling']) : [];
  if (has('baseline')) {
    for (const n of names) if (n !== 'baseline' && n !== 'ceiling') pairs.push([n, 'baseline']);
  }
  if (has('sse-hub')) for (const n of MOUNTS) if (has(n)) pairs.push([n, 'sse-hub']);
  return pairs;
}

function printTable(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  const line = (r) =>
    `| ${r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join(' | ')} |`;
  console.log(line(rows[0]));
  console.log(`|${widths.map((w, i) => (i === 0 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const r of rows.slice(1)) console.log(line(r));
}

function printTargets(rows) {
  const get = (scenario, server, key) => rows.find((r) => r.scenario.name === scenario)?.figures[server]?.[key];
  const vs = (server, base, scenario, key) => ratio(get(scenario, server, key), get(scenario, base, key));
  const CPU = 'cpuUsPerEvent';
  const EPS = 'eventsPerSecond';
  const targets = [
    ['sse-hub / ceiling: max throughput, max-1k', vs('sse-hub', 'ceiling', 'max-1k', EPS), '≥', 0.9],
    ['sse-hub / ceiling: CPU per event, max-1k', vs('sse-hub', 'ceiling', 'max-1k', CPU), '≤', 1.1],
    ['sse-hub / ceiling: CPU per event, broadcast-10k', vs('sse-hub', 'ceiling', 'broadcast-10k', CPU), '≤', 1.1],
    ['sse-hub / ceiling: CPU per event, unicast-10k', vs('sse-hub', 'ceiling', 'unicast-10k', CPU), '≤', 1.1],
  ];
  for (const mount of ['express5', 'express4']) {
    targets.push(
      [`${mount} / ceiling: max throughput, max-1k`, vs(mount, 'ceiling', 'max-1k', EPS), '≥', 0.9],
      [`${mount} / ceiling: CPU per event, max-1k`, vs(mount, 'ceiling', 'max-1k', CPU), '≤', 1.1],
      [
        `${mount} / sse-hub: RSS per idle connection, idle-10k`,
        vs(mount, 'sse-hub', 'idle-10k', 'rssPerConn'),
        '≤',
        1.15,
      ],
      [`${mount} / sse-hub: max throughput, max-1k`, vs(mount, 'sse-hub', 'max-1k', EPS), '≥', 0.9],
      [`${mount} / sse-hub: CPU per event, max-1k`, vs(mount, 'sse-hub', 'max-1k', CPU), '≤', 1.1],
      [`${mount} / sse-hub: CPU per event, unicast-10k`, vs(mount, 'sse-hub', 'unicast-10k', CPU), '≤', 1.1],
    );
  }
  targets.push(
    ['sse-hub / baseline: CPU per event, broadcast-1k', vs('sse-hub', 'baseline', 'broadcast-1k', CPU), '≤', 1.1],
    ['sse-hub / baseline: CPU per event, broadcast-10k', vs('sse-hub', 'baseline', 'broadcast-10k', CPU), '≤', 1.1],
    ['sse-hub / baseline: CPU per event, unicast-10k', vs('sse-hub', 'baseline', 'unicast-10k', CPU), '≤', 1.1],
    ['sse-hub / baseline: RSS per idle conn, idle-10k', vs('sse-hub', 'baseline', 'idle-10k', 'rssPerConn'), '≤', 1.25],
    ['sse-hub / baseline: max throughput, max-1k', vs('sse-hub', 'baseline', 'max-1k', EPS), '≥', 0.9],
    ['sse-hub / baseline: p99 latency, broadcast-10k', vs('sse-hub', 'baseline', 'broadcast-10k', 'p99Ms'), '≤', 1.2],
    ['workers 2 / 1, max-1k events/s', vs('sse-hub-2w', 'sse-hub', 'workers-max-1k', EPS), '', undefined],
    ['workers 2 / 1, broadcast-10k p99', vs('sse-hub-2w', 'sse-hub', 'workers-broadcast-10k', 'p99Ms'), '', undefined],
  );
  const shown = targets.filter(([, value]) => value !== undefined);
  if (shown.length === 0) return;
  console.log('\n## against the targets (same-run ratios)');
  printTable([
    ['figure', 'ratio', 'target', 'met'],
    ...shown.map(([what, value, op, limit]) => [
      what,
      `×${fmt(value, 2)}`,
      limit === undefined ? '—' : `${op} ×${limit}`,
      limit === undefined ? '—' : (op === '≤' ? value <= limit : value >= limit) ? 'yes' : 'NO',
    ]),
  ]);
}

function ratio(a, b) {
  if (a === undefined || b === undefined) return undefined;
  return b === 0 ? NaN : a / b;
}

function fmt(value, digits) {
  if (value === undefined) return '—';
  if (!Number.isFinite(value)) return 'n/a';
  return value.toFixed(digits);
}

function parseArgs(argv) {
  const parsed = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error(`bench: unexpected argument ${arg}`);
    const [key, inline] = arg.slice(2).split('=', 2);
    if (inline !== undefined) parsed[key] = inline;
    // --storm-flags takes the next argument as it is: it is made of flags.
    else if (argv[i + 1] !== undefined && (key === 'storm-flags' || !argv[i + 1].startsWith('--')))
      parsed[key] = argv[++i];
    else parsed[key] = true;
  }
  return parsed;
}
