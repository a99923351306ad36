// The storm-10k scenario: a deploy restarts sse-runserver under 10,000
// connected clients. Every connection listens on `all` and its own channel
// with history on; the load client publishes through sse-hub's own history
// script while bench/run.mjs SIGTERMs the server and starts a fresh one on the
// same port. The load client (loadgen.c, --mode storm) reconnects every stream
// after the `retry:` it was given, with its Last-Event-ID, checks every
// connection's events for gaps and duplicates against what was published, and
// fails the scenario on any. Here: the servers, peak RSS and Redis's SLOWLOG.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createClient } from 'redis';
import { freePort, rssOf, runLoadgen, startServer } from './harness.mjs';

/** The targets the scenario is judged by. */
export const STORM_TARGETS = { lost: 0, duplicated: 0, catchUpSeconds: 10, slowestRedisMs: 100 };

/**
 * Runs the storm once: `flags` are extra sse-runserver flags (the levers, e.g.
 * `--drain-time 3000`), given to both the old and the fresh server.
 */
export async function runStorm({ out, loadgen, redis, smoke, conns, flags = [], historySize = 1000 }) {
  const dist = join(out, 'dist', 'cjs');
  const hubBin = join(dist, 'bin', 'sse-runserver.js');
  const history = { size: historySize, ttl: 3600 };
  const script = await historyScript(dist, history);
  const client = createClient({ url: redis.url });
  client.on('error', (err) => process.stderr.write(`bench redis: ${err}\n`));
  await client.connect();
  try {
    await client.sendCommand(['FLUSHALL']);
    await client.sendCommand(['SCRIPT', 'LOAD', script.text]);
    // Every command over 1 ms is kept, so the slowest of the run is among them.
    await client.sendCommand(['CONFIG', 'SET', 'slowlog-log-slower-than', '1000']);
    await client.sendCommand(['CONFIG', 'SET', 'slowlog-max-len', '100000']);
    await client.sendCommand(['SLOWLOG', 'RESET']);
    // Script calls are counted from here: minus the publishes, they are the history reads.
    await client.sendCommand(['CONFIG', 'RESETSTAT']);

    const port = await freePort();
    const serverArgs = [
      hubBin,
      '--port',
      String(port),
      '--redis',
      redis.url,
      '--workers',
      '1',
      '--history',
      String(history.size),
      // Read at the end: how the fresh server's replays went (nothing per event).
      '--metrics',
      // A smoke run cannot wait the default 3 s for every reconnect.
      ...(smoke ? ['--retry', '300'] : []),
      ...flags,
    ];
    // STORM_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof": node flags for both servers (a profile of the storm).
    const nodeArgs = process.env.STORM_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
    const first = await startServer(serverArgs, { redisUrl: redis.url, nodeArgs });
    let fresh;
    let takeover;
    let freshMetrics = {};
    const peak = { old: 0, fresh: 0, redis: 0 };
    const timing = { oldExitSeconds: NaN, freshListeningSeconds: NaN };
    const sample = () => {
      peak.old = Math.max(peak.old, rssOf(first.pid));
      if (fresh) peak.fresh = Math.max(peak.fresh, rssOf(fresh.pid));
      peak.redis = Math.max(peak.redis, rssOf(redis.pid));
    };
    const sampler = setInterval(sample, 100);
    let line;
    try {
      line = await runLoadgen(
        loadgen,
        [
          '--mode',
          'storm',
          '--port',
          String(port),
          '--redis-port',
          String(redis.port),
          '--conns',
          String(conns),
          '--settle',
          smoke ? '200' : '1500',
          '--warmup',
          smoke ? '500' : '3000',
          '--duration',
          smoke ? '300' : '2000',
          '--storm-max',
          '30000',
          '--rate-all',
          smoke ? '20' : '100',
          '--rate-users',
          smoke ? '100' : '1000',
          '--max-connecting',
          '1000',
          '--script-sha',
          script.sha,
          '--key-last',
          script.keyLast,
          '--key-start',
          script.keyStart,
          '--stream-prefix',
          script.streamPrefix,
          '--history-size',
          String(history.size),
          '--history-ttl',
          String(history.ttl),
        ],
        {
          okCodes: [0, 3],
          onLine: (l) => {
            if (!l.includes('"sigterm"')) return;
            const t0 = performance.now();
            first.signal('SIGTERM');
            void first.exited.then(() => (timing.oldExitSeconds = (performance.now() - t0) / 1000));
            takeover = startFresh(serverArgs, redis.url, nodeArgs).then((server) => {
              timing.freshListeningSeconds = (performance.now() - t0) / 1000;
              fresh = server;
            });
          },
        },
      );
    } finally {
      clearInterval(sampler);
      sample();
      await takeover?.catch(() => undefined);
      if (fresh) freshMetrics = await scrape(`http://127.0.0.1:${port}/metrics`);
      await first.stop();
      await fresh?.stop();
    }
    const figures = JSON.parse(line);
    const slow = slowest(await client.sendCommand(['SLOWLOG', 'GET', '100000']), script.sha);
    const scriptCalls = scriptCallsOf(String(await client.sendCommand(['INFO', 'commandstats'])));
    return {
      ...figures,
      peakRssServer: Math.max(peak.old, peak.fresh),
      peakRssOld: peak.old,
      peakRssFresh: peak.fresh,
      peakRssRedis: peak.redis,
      slowestRedisMs: slow.ms,
      // Every publish is one script call; presence refreshes (about 2 a second) are left in.
      redisReads: scriptCalls - figures.publishedAll - figures.publishedUsers,
      slowestRedisCommand: slow.command,
      redisOver100Ms: slow.over100,
      freshMetrics,
      oldExit: (await first.exited).code,
      oldOutput: first.output().slice(-2000),
      ...timing,
    };
  } finally {
    await client.quit().catch(() => undefined);
  }
}

/** Starts the fresh server on the port the old one is giving up, retrying while it is still bound. */
async function startFresh(serverArgs, redisUrl, nodeArgs) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      return await startServer(serverArgs, { redisUrl, nodeArgs, settleMs: 0 });
    } catch (err) {
      if (!/EADDRINUSE/.test(String(err)) || Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/**
 * sse-hub's publish-with-history command, asked of the build under test: the
 * script, its SHA and keys, exactly as RedisBroker#publish sends them.
 */
function historyScript(dist, limits) {
  const require = createRequire(import.meta.url);
  const { publishWithHistory } = require(join(dist, 'brokers', 'redis-history.js'));
  const seen = {};
  const run = async (args) => {
    if (args[0] === 'EVALSHA') {
      seen.sha = args[1];
      seen.keys = args.slice(3, 3 + Number(args[2]));
      throw new Error('NOSCRIPT asked for the script text');
    }
    seen.text = args[1];
    return '1-0';
  };
  const probe = publishWithHistory(run, '', 'CHANNEL', { event: 'message', data: 'x' }, limits);
  return probe.then(() => {
    const [keyLast, keyStart, stream] = seen.keys;
    return { sha: seen.sha, text: seen.text, keyLast, keyStart, streamPrefix: stream.slice(0, -'CHANNEL'.length) };
  });
}

/** The replay and history-cache figures of a server's /metrics, by name (empty if it has none). */
async function scrape(url) {
  const figures = {};
  try {
    const text = await (await fetch(url)).text();
    for (const match of text.matchAll(/^(sse_hub_(?:history_cache|replays|slow_clients|gaps)\w*) (\d+)/gm)) {
      figures[match[1]] = Number(match[2]);
    }
  } catch {
    // A server that is gone or has no /metrics reports nothing.
  }
  return figures;
}

/** EVALSHA + EVAL calls in an `INFO commandstats` reply. */
function scriptCallsOf(info) {
  let calls = 0;
  for (const match of info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) calls += Number(match[1]);
  return calls;
}

/** The slowest command SLOWLOG kept: duration and which one; and how many took over 100 ms. */
function slowest(entries, publishSha) {
  let ms = 0;
  let command = '—';
  let over100 = 0;
  for (const entry of entries) {
    const micros = Number(entry[2]);
    if (micros > 100_000) over100++;
    if (micros / 1000 > ms) {
      ms = micros / 1000;
      const args = entry[3].map(String);
      command =
        args[0] === 'EVALSHA'
          ? `EVALSHA of the ${args[1] === publishSha ? 'publish' : 'history-read'} script`
          : args.slice(0, 2).join(' ');
    }
  }
  return { ms, command, over100 };
}

/** Prints the storm's table and its targets; returns whether every target was met. */
export function printStorm(name, conns, runs, printTable) {
  console.log(
    `\n## ${name} — ${conns} connections on all + their own channel, --history, publishing on; SIGTERM, fresh server on the same port`,
  );
  const mib = (b) => (b / 2 ** 20).toFixed(1);
  const rows = [
    [
      'run',
      'back s',
      'caught up s',
      'p99 before ms',
      'p50 ms',
      'p99 ms',
      'lost',
      'missing',
      'duplicated',
      'gaps',
      'reconnects',
      'refused',
      'RSS server MiB',
      'RSS Redis MiB',
      'slowest Redis ms',
      'Redis reads',
      'checked',
    ],
  ];
  let met = true;
  for (const [label, r] of runs) {
    rows.push([
      label,
      r.backSeconds.toFixed(2),
      r.allCaughtUp ? r.catchUpSeconds.toFixed(2) : `never (${r.notCaughtUp})`,
      r.p99BeforeMs.toFixed(1),
      r.p50Ms.toFixed(1),
      r.p99Ms.toFixed(1),
      String(r.lost),
      String(r.missing),
      String(r.duplicated),
      String(r.gaps),
      String(r.reconnects),
      String(r.refused),
      mib(r.peakRssServer),
      mib(r.peakRssRedis),
      r.slowestRedisMs.toFixed(1),
      String(r.redisReads),
      r.ok ? 'ok' : 'FAILED',
    ]);
    met &&= r.ok;
  }
  printTable(rows);
  for (const [label, r] of runs) {
    console.log(
      `${label}: old server exited ${r.oldExitSeconds.toFixed(2)} s after SIGTERM, the fresh one listened after ${r.freshListeningSeconds.toFixed(2)} s; published ${r.publishedAll} on all + ${r.publishedUsers} to users; retry given ${r.retryMinMs}–${r.retryMaxMs} ms; slowest Redis command ${r.slowestRedisCommand}; ${r.redisOver100Ms} over 100 ms; peak RSS old/fresh server ${mib(r.peakRssOld)}/${mib(r.peakRssFresh)} MiB`,
    );
  }
  for (const [label, r] of runs) {
    if (Object.keys(r.freshMetrics).length > 0)
      console.log(`${label}: fresh server at the end: ${JSON.stringify(r.freshMetrics)}`);
  }
  const last = runs[runs.length - 1][1];
  const targets = [
    [
      'lost events (skipped, or never delivered)',
      last.lost + last.missing,
      `= ${STORM_TARGETS.lost}`,
      last.lost + last.missing === STORM_TARGETS.lost,
    ],
    ['duplicated events', last.duplicated, `= ${STORM_TARGETS.duplicated}`, last.duplicated === 0],
    [
      'all back and caught up after SIGTERM, s',
      last.allCaughtUp ? last.catchUpSeconds.toFixed(2) : 'never',
      `≤ ${STORM_TARGETS.catchUpSeconds}`,
      last.allCaughtUp && last.catchUpSeconds <= STORM_TARGETS.catchUpSeconds,
    ],
    [
      'slowest Redis command, ms',
      last.slowestRedisMs.toFixed(1),
      `≤ ${STORM_TARGETS.slowestRedisMs}`,
      last.slowestRedisMs <= STORM_TARGETS.slowestRedisMs,
    ],
  ];
  console.log(`\n## ${name} against its targets (${runs[runs.length - 1][0]})`);
  printTable([
    ['figure', 'value', 'target', 'met'],
    ...targets.map(([what, value, target, ok]) => [what, String(value), target, ok ? 'yes' : 'NO']),
  ]);
  return met;
}
