// Bounded replays against a spawned redis-server and sse-runserver: 20 raw
// sockets resume from `1-0` over 8 MB of history (1000 × 8 KB) and never read,
// with --max-buffered-bytes 1048576. The server's RSS grows less than 64 MB,
// Redis answers PING in under 100 ms throughout (no history read blocks it),
// a live reader on the same channel keeps p99 under 250 ms, and the 20 are
// closed within a minute (the stall timeout is set low here to be quick).
// Then a normal resume from a recent id works exactly as before.
//
// Tolerance: PING and delivery times are wall-clock. With other suites
// running beside it, the scheduler alone adds delay in proportion to the
// contention, so the time limits are multiplied by the 1-minute load per core
// when it is above one (a p99 of 267 ms was seen at CI's own load), and by 4
// above three per core, which still fails the unpaged read (one call held
// Redis for 100–350 ms, and 20 of them queued behind each other). On an idle
// machine the targets apply as stated. RSS and the cut are held either way.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { createClient } from 'redis';
import type { RedisBroker } from '../../src/brokers/redis';
import { readHistory } from '../../src/brokers/redis-history';
import type { Hub } from '../../src/core/hub';
import { createHub } from '../../src/create-hub';
import { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { startRunserver, type RunningServer } from '../helpers/run-cli';
import { SseReader, type ParsedEvent } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

const KEPT = 1000;
const SIZE = 8 * 1024;
const FLOODERS = 20;
const MAX_BUFFERED = 1024 * 1024;
const STALL_MS = 3000;
const MIB = 1024 * 1024;

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1]) * 1024;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] as number;
}

/** A socket that sends its GET with Last-Event-ID 1-0 and then never reads. */
function flooder(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined); // being cut is the point
    socket.once('error', reject);
    socket.on('connect', () => {
      socket.write(
        'GET /?channels=flood HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nLast-Event-ID: 1-0\r\n\r\n',
      );
      socket.pause();
      resolve(socket);
    });
  });
}

/** PINGs Redis on one connection, one after the other, and keeps every round trip in ms. */
function pingLoop(port: number): { stop(): Promise<number[]> } {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  const times: number[] = [];
  let running = true;
  const done = (async () => {
    await new Promise((resolve) => socket.once('connect', resolve));
    while (running) {
      const sent = performance.now();
      await new Promise<void>((resolve) => {
        socket.once('data', () => resolve());
        socket.write('PING\r\n');
      });
      times.push(performance.now() - sent);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    socket.destroy();
  })();
  return {
    async stop() {
      running = false;
      await done;
      return times;
    },
  };
}

async function metric(server: RunningServer, name: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const match = new RegExp(`^${name} (\\d+)`, 'm').exec(text);
  return Number(match?.[1] ?? NaN);
}

describeWithTools(['redis-server'], 'bounded replays', () => {
  let redis: RedisServer;
  let server: RunningServer;
  let publisher: Hub;
  let admin: ReturnType<typeof createClient>;
  const sockets: net.Socket[] = [];
  const readers: SseReader[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    server = await startRunserver([
      '--redis',
      redis.url,
      '--history',
      String(KEPT),
      '--max-buffered-bytes',
      String(MAX_BUFFERED),
      '--replay-stall-timeout',
      String(STALL_MS),
      '--metrics',
      // One process, so that its RSS is the server's memory.
      '--workers',
      '1',
    ]);
    publisher = createHub({ broker: 'redis', redisUrl: redis.url, history: { size: KEPT, ttl: 600 } });
    await (publisher.broker as RedisBroker).ready();
    admin = createClient({ url: redis.url });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.quit();
    for (const socket of sockets) socket.destroy();
    for (const reader of readers) reader.close();
    await publisher.close();
    await server.stop();
    await redis.stop();
  });

  test('20 resumes from 1-0 over 1000 × 8 KB that never read: RSS, Redis PING, live p99 and the cut stay bounded', async () => {
    const padding = 'x'.repeat(SIZE - 40);
    for (let i = 0; i < KEPT; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, k) => publisher.sendEvent('bulk', `${i + k}|${padding}`, 'flood')),
      );
    }
    expect(Number((await redis.command('XLEN', 'sse-hub:history:flood')).slice(1))).toBe(KEPT);
    await admin.sendCommand(['CONFIG', 'SET', 'slowlog-log-slower-than', '0']);
    await admin.sendCommand(['CONFIG', 'SET', 'slowlog-max-len', '1000000']);
    await admin.sendCommand(['SLOWLOG', 'RESET']);

    // A live reader on the same channel; each live event carries its send time.
    const live = await SseReader.open(`${server.url}/?channels=flood`);
    readers.push(live);
    const latencies: { at: number; ms: number }[] = [];
    live.on('event', (event: ParsedEvent) => {
      if (event.event === 'tick') latencies.push({ at: Date.now(), ms: Date.now() - Number(event.data) });
    });
    let publishing = true;
    const ticking = (async () => {
      while (publishing) {
        await publisher.sendEvent('tick', String(Date.now()), 'flood');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const pings = pingLoop(redis.port);
    const pid = server.proc.pid as number;
    let rssPeak = 0;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssBytes(pid))), 50);

    try {
      await waitFor(() => latencies.length >= 50, { timeout: 10_000, what: '50 live events before the flood' });
      const rssBefore = rssBytes(pid);
      rssPeak = rssBefore;
      const floodAt = Date.now();
      for (let i = 0; i < FLOODERS; i++) sockets.push(await flooder(server.port));

      // The server closes all 20 (as slow clients: they took nothing for the stall timeout).
      await waitFor(async () => (await metric(server, 'sse_hub_replays_stalled_total')) === FLOODERS, {
        timeout: 60_000,
        interval: 200,
        what: 'the server to close the 20 resumes that never read',
      });
      const closedAfter = Date.now() - floodAt;
      expect(await metric(server, 'sse_hub_slow_clients_closed_total')).toBe(FLOODERS);
      expect(await metric(server, 'sse_hub_replays_active')).toBe(0);
      expect(await metric(server, 'sse_hub_connections')).toBe(1);
      // A little live traffic after the cut, inside the measured window.
      const settled = latencies.length;
      await waitFor(() => latencies.length >= settled + 25, { timeout: 10_000, what: 'live events after the cut' });
      clearInterval(sampler);
      rssPeak = Math.max(rssPeak, rssBytes(pid));
      publishing = false;
      await ticking;
      const pingTimes = await pings.stop();

      const before = latencies.filter((l) => l.at < floodAt).map((l) => l.ms);
      const during = latencies.filter((l) => l.at >= floodAt).map((l) => l.ms);
      const growth = rssPeak - rssBefore;
      const calls = await commandTimes(admin);

      // A whole-history read, as one call did before pages: the same-run baseline.
      await admin.sendCommand(['SLOWLOG', 'RESET']);
      const run = (args: string[]): Promise<unknown> => admin.sendCommand(args);
      await readHistory(run, '', new Map([['flood', '1-0']]), { size: KEPT, ttl: 600 });
      const whole = await commandTimes(admin);

      console.info(
        `replay flood: ${FLOODERS} × resume from 1-0 over ${KEPT} × ${SIZE / 1024} KiB, never reading: ` +
          `closed after ${(closedAfter / 1000).toFixed(1)} s (stall timeout ${STALL_MS} ms); ` +
          `server RSS +${(growth / MIB).toFixed(1)} MiB (peak ${(rssPeak / MIB).toFixed(0)} MiB); ` +
          `Redis PING max ${Math.max(...pingTimes).toFixed(1)} ms over ${pingTimes.length}; ` +
          `Redis calls: ${calls.ms.length}, p99 ${percentile(calls.ms, 99).toFixed(2)} ms, slowest ${calls.max.toFixed(2)} ms (${calls.name}); ` +
          `one whole-history read as before pages: ${whole.max.toFixed(2)} ms (×${(whole.max / percentile(calls.ms, 99)).toFixed(1)} the p99); ` +
          `live p99 ${percentile(before, 99)} ms before → ${percentile(during, 99)} ms during (${during.length} events)`,
      );
      // Time limits scale with the CPU contention the test itself cannot
      // control (other suites running beside it): by the load per core above
      // one, and ×4 past three.
      const load = (os.loadavg()[0] as number) / os.cpus().length;
      const slack = load > 3 ? 4 : Math.max(1, Math.round(load * 10) / 10);
      if (slack > 1)
        console.info(`replay flood: machine loaded (load ${load.toFixed(1)} per core): time limits ×${slack}`);
      expect(closedAfter).toBeLessThan(60_000);
      expect(growth).toBeLessThan(64 * MIB);
      expect(Math.max(...pingTimes)).toBeLessThan(100 * slack);
      expect(percentile(during, 99)).toBeLessThan(250 * slack);
      // A page is 16 events: a few ms of work. SLOWLOG times are wall-clock, so
      // on a loaded shared machine a call can also be descheduled: allowed up to 25 ms.
      expect(percentile(calls.ms, 99)).toBeLessThan(5);
      expect(calls.max).toBeLessThan(25 * slack);
    } finally {
      clearInterval(sampler);
      publishing = false;
      await ticking;
      await pings.stop();
    }

    // A normal resume from a recent id: exactly the events after it, then live.
    const seen = live.events.filter((e) => e.event === 'tick');
    const from = seen[seen.length - 6] as ParsedEvent;
    const resumed = await SseReader.open(`${server.url}/?channels=flood`, { 'Last-Event-ID': from.id as string });
    readers.push(resumed);
    const expected = seen.slice(-5);
    const got = await resumed.waitForEvents(5);
    expect(got.slice(0, 5).map((e) => [e.id, e.event, e.data])).toEqual(expected.map((e) => [e.id, e.event, e.data]));
    const { id } = await publisher.sendEvent('tick', 'after', 'flood');
    await resumed.waitForEvents(6);
    expect(resumed.events[5]).toMatchObject({ id, event: 'tick', data: 'after' });
    expect(resumed.events.some((e) => e.event === 'gap')).toBe(false);
  });
});

/** Redis's SLOWLOG (with slowlog-log-slower-than 0: every command), execution time in ms, not waiting. */
async function commandTimes(
  admin: ReturnType<typeof createClient>,
): Promise<{ ms: number[]; max: number; name: string }> {
  // Each entry: [id, timestamp, microseconds, [command, args...], ...].
  const entries = (await admin.sendCommand(['SLOWLOG', 'GET', '-1'])) as [number, number, number, string[]][];
  const ms: number[] = [];
  let slowest = { max: 0, name: '' };
  for (const [, , micros, args] of entries) {
    if (args[0] === 'SLOWLOG' || args[0] === 'CONFIG') continue;
    ms.push(micros / 1000);
    if (micros / 1000 > slowest.max) slowest = { max: micros / 1000, name: args.slice(0, 1).join(' ') };
  }
  return { ms, ...slowest };
}
