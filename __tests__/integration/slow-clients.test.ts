// docs/guarantees.md "Slow clients": raw sockets that never read are
// cut once their unsent bytes pass maxBufferedBytes, while 5000 events of
// 10 KiB go out; a fast client's latency does not grow, the server's RSS stays
// bounded, and with history on the cut client resumes where it was.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { createHub } from '../../src/create-hub';
import type { Hub } from '../../src/core/hub';
import type { RedisBroker } from '../../src/brokers/redis';
import { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { startRunserver, type RunningServer } from '../helpers/run-cli';
import { SseReader, type ParsedEvent } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

const EVENTS = 5000;
const SIZE = 10 * 1024;
const MAX_BUFFERED = 1024 * 1024;
const SLOW_CLIENTS = 3;

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1]) * 1024;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** A client that sends its GET and then never reads a byte. */
function stalledClient(port: number): Promise<{ socket: net.Socket; received: () => string; ended: () => boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let ended = false;
    socket.on('error', () => undefined); // a reset is one way of being cut
    socket.on('close', () => (ended = true));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('connect', () => {
      socket.write(`GET /?channels=bulk HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
      socket.pause();
      resolve({ socket, received: () => Buffer.concat(chunks).toString('utf8'), ended: () => ended });
    });
    socket.on('error', reject);
  });
}

describeWithTools(['redis-server'], 'slow clients', () => {
  let redis: RedisServer;
  let server: RunningServer;
  let publisher: Hub;
  const sockets: net.Socket[] = [];
  const readers: SseReader[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    server = await startRunserver([
      '--redis',
      redis.url,
      '--history',
      String(EVENTS + 100),
      '--max-buffered-bytes',
      String(MAX_BUFFERED),
      // One process, so that its RSS is the server's memory.
      '--workers',
      '1',
    ]);
    publisher = createHub({ broker: 'redis', redisUrl: redis.url, history: { size: EVENTS + 100, ttl: 600 } });
    await (publisher.broker as RedisBroker).ready();
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    for (const reader of readers) reader.close();
    await publisher.close();
    await server.stop();
    await redis.stop();
  });

  test('stalled sockets are cut, a fast client keeps its latency, RSS stays bounded, the cut client resumes', async () => {
    const fast = await SseReader.open(`${server.url}/?channels=bulk`);
    readers.push(fast);
    const latencies: number[] = [];
    fast.on('event', (event: ParsedEvent) => latencies.push(Date.now() - Number(event.data.slice(0, 13))));
    const stalled: Awaited<ReturnType<typeof stalledClient>>[] = [];
    for (let i = 0; i < SLOW_CLIENTS; i++) {
      const client = await stalledClient(server.port);
      sockets.push(client.socket);
      stalled.push(client);
    }
    await waitFor(async () => (await redis.numsub('bulk')) === 1);

    const rssBefore = rssBytes(server.proc.pid as number);
    let rssPeak = rssBefore;
    const padding = 'x'.repeat(SIZE - 30);
    const started = Date.now();
    for (let i = 0; i < EVENTS; i++) {
      // Keep at most 50 events in flight to the fast client: it reads as fast
      // as it can, and its latency measures the server, not a backlog.
      if (fast.events.length < i - 50) await waitFor(() => fast.events.length >= i - 50, { interval: 1 });
      await publisher.sendEvent('bulk', `${Date.now()}|${String(i).padStart(6, '0')}|${padding}`, 'bulk');
      if (i % 250 === 0) rssPeak = Math.max(rssPeak, rssBytes(server.proc.pid as number));
    }
    await fast.waitForEvents(EVENTS, 20_000);
    const elapsed = Date.now() - started;
    rssPeak = Math.max(rssPeak, rssBytes(server.proc.pid as number));

    // Every event reached the fast client, in order, and it was never cut.
    expect(fast.ended).toBe(false);
    expect(fast.events.map((e) => Number(e.data.slice(14, 20)))).toEqual([...Array(EVENTS).keys()]);
    const early = median(latencies.slice(100, 1100));
    const late = median(latencies.slice(-1000));
    expect(late).toBeLessThanOrEqual(Math.max(3 * early, early + 25));
    // 3 stalled clients would hold ~3 × 50 MB without the bound.
    const growth = rssPeak - rssBefore;
    expect(growth).toBeLessThan(100 * 1024 * 1024);

    // The stalled clients were cut: once they read again they get what the
    // kernel held, then the end of the stream — far less than was sent.
    for (const client of stalled) client.socket.resume();
    await waitFor(() => stalled.every((c) => c.ended()), { timeout: 10_000, what: 'the stalled sockets to be closed' });
    const total = EVENTS * SIZE;
    for (const client of stalled) expect(Buffer.byteLength(client.received())).toBeLessThan(total / 2);

    // With history on, a cut client resumes from its last complete event.
    const text = stalled[0]?.received() as string;
    const ids = [...text.matchAll(/id: (\S+)\nevent: bulk\ndata: \d{13}\|(\d{6})\|x+\n\n/g)];
    const last = ids[ids.length - 1] as RegExpMatchArray;
    const lastIndex = Number(last[2]);
    const resumed = await SseReader.open(`${server.url}/?channels=bulk`, { 'Last-Event-ID': last[1] as string });
    readers.push(resumed);
    await resumed.waitForEvents(EVENTS - lastIndex - 1, 20_000);
    expect(resumed.events.map((e) => Number(e.data.slice(14, 20)))).toEqual(
      [...Array(EVENTS - lastIndex - 1).keys()].map((k) => k + lastIndex + 1),
    );
    console.info(
      `slow clients: ${EVENTS} × 10 KiB in ${elapsed} ms; fast client p50 latency ${early} ms (first 1000) → ${late} ms (last 1000); ` +
        `server RSS +${Math.round(growth / 1048576)} MiB with ${SLOW_CLIENTS} stalled clients; ` +
        `stalled client got ${lastIndex + 1} events before the cut, resumed ${EVENTS - lastIndex - 1}`,
    );
  }, 60_000);
});
