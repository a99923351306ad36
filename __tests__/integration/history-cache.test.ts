// The history cache (docs/performance.md#the-history-cache) against a real
// redis-server and 200 real SSE streams: after a publish burst, every client
// resumes on `all` from the same place while more events are published; each
// gets every event once, in order, and Redis serves a few page reads of
// `all`, not a few per client.
import { createClient } from 'redis';
import type { RedisBroker } from '../../src/brokers/redis';
import { createServer, type SseServer } from '../../src/cli/server';
import { compareIds } from '../../src/core/history';
import { PAGE_EVENTS } from '../../src/core/history-read';
import { WRITES_PER_TURN } from '../../src/core/hub';
import { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

const CLIENTS = 200;
const BURST = 300;
const LIVE = 50;
const HISTORY = { size: 2000, ttl: 600 };

describeWithTools(['redis-server'], 'history cache', () => {
  let redis: RedisServer;
  let sse: SseServer;
  let url: string;
  let admin: ReturnType<typeof createClient>;
  const readers: SseReader[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    admin = createClient({ url: redis.url });
    await admin.connect();
  });
  afterAll(async () => {
    await admin.quit();
    await redis.stop();
  });
  beforeEach(async () => {
    sse = createServer({ hubOptions: { broker: 'redis', redisUrl: redis.url, history: HISTORY } });
    url = `http://127.0.0.1:${(await sse.listen(0)).port}`;
    await (sse.hub.broker as RedisBroker).ready();
  });
  afterEach(async () => {
    for (const reader of readers.splice(0)) reader.close();
    await sse.close();
  });

  /** Script calls Redis served since the last CONFIG RESETSTAT: publishes and history reads. */
  async function scriptCalls(): Promise<number> {
    const info = await admin.sendCommand<string>(['INFO', 'commandstats']);
    let calls = 0;
    for (const match of info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) calls += Number(match[1]);
    return calls;
  }

  test(`${CLIENTS} clients resuming on one channel: each event once and in order, a few Redis reads in all`, async () => {
    const { hub } = sse;
    // A listener keeps `all` subscribed, as the users who did not leave do.
    const anchor = await SseReader.open(`${url}/?channels=all`);
    readers.push(anchor);
    await waitFor(() => hub.stats().channels === 1, { what: 'the subscription' });
    const sent: string[] = [];
    for (let i = 0; i < BURST; i++) sent.push((await hub.sendEvent('message', { i }, 'all')).id as string);
    await anchor.waitForEvents(BURST, 20_000);

    await admin.sendCommand(['CONFIG', 'RESETSTAT']);
    const before = hub.stats();
    const lastSeen = sent[49] as string;
    const opening = Array.from({ length: CLIENTS }, () =>
      SseReader.open(`${url}/?channels=all`, { 'Last-Event-ID': lastSeen }),
    );
    // More events while they resume: the live edge moves under the replays.
    for (let i = 0; i < LIVE; i++) sent.push((await hub.sendEvent('message', { i: BURST + i }, 'all')).id as string);
    const clients = await Promise.all(opening);
    readers.push(...clients);
    const expected = sent.slice(50);
    for (const client of clients) {
      expect(client.status).toBe(200);
      await client.waitForEvents(expected.length, 30_000);
    }
    for (const client of clients) {
      const got = client.events.map((e) => e.id as string);
      expect(got).toEqual(expected);
    }
    for (let i = 1; i < expected.length; i++) {
      expect(compareIds(expected[i - 1] as string, expected[i] as string)).toBeLessThan(0);
    }

    const after = hub.stats();
    const cacheReads =
      after.historyCacheFillReads - before.historyCacheFillReads + after.historyCacheMisses - before.historyCacheMisses;
    const hits = after.historyCacheHits - before.historyCacheHits;
    // Without the cache: every client reads its 250 missed events 16 at a time.
    const uncached = CLIENTS * Math.ceil((BURST - 50) / PAGE_EVENTS);
    expect(hits).toBeGreaterThanOrEqual(CLIENTS);
    expect(cacheReads).toBeLessThan(CLIENTS / 4);
    // Redis itself agrees: script calls are the LIVE publishes, the cache's
    // reads and the presence refreshes (one or two a second).
    const redisReads = (await scriptCalls()) - LIVE;
    expect(redisReads).toBeGreaterThanOrEqual(cacheReads);
    expect(redisReads).toBeLessThan(uncached / 50);
  }, 90_000);

  test('resumes answered while the fan-out is behind (the cache ahead of live delivery): each event once, in order', async () => {
    const { hub } = sse;
    // 3 × WRITES_PER_TURN listeners: every event is written over several turns,
    // so a burst leaves the fan-out behind the broker while the cache follows
    // the broker as events arrive.
    const anchors = await Promise.all(
      Array.from({ length: 3 * WRITES_PER_TURN }, () => SseReader.open(`${url}/?channels=all`)),
    );
    readers.push(...anchors);
    await waitFor(() => hub.stats().connections === anchors.length, { what: 'the listeners' });
    const sent: string[] = [];
    const burst = async (from: number, count: number): Promise<void> => {
      const ids = await Promise.all(
        Array.from({ length: count }, (_, i) => hub.sendEvent('message', { i: from + i }, 'all')),
      );
      sent.push(...ids.map((r) => r.id as string));
    };
    await burst(0, 100);
    await (anchors[0] as SseReader).waitForEvents(100, 20_000);
    const lastSeen = sent.sort(compareIds)[19] as string;
    const opening = Array.from({ length: 100 }, () =>
      SseReader.open(`${url}/?channels=all`, { 'Last-Event-ID': lastSeen }),
    );
    await Promise.all([burst(100, 200), burst(300, 200)]);
    const clients = await Promise.all(opening);
    readers.push(...clients);
    const expected = [...sent].sort(compareIds).slice(20);
    for (const client of clients) await client.waitForEvents(expected.length, 30_000);
    for (const client of clients) expect(client.events.map((e) => e.id as string)).toEqual(expected);
    for (const anchor of anchors) await anchor.waitForEvents(sent.length, 30_000);
    expect((anchors[anchors.length - 1] as SseReader).events.map((e) => e.id as string)).toEqual(
      [...sent].sort(compareIds),
    );
    expect(hub.stats().historyCacheHits).toBeGreaterThan(0);
  }, 90_000);

  test('clients on `all` and their own channel (the storm): each event once, in id order; a fill per own channel', async () => {
    const { hub } = sse;
    const users = Array.from({ length: CLIENTS / 2 }, (_, i) => `u${i}`);
    const anchor = await SseReader.open(`${url}/?channels=all`);
    readers.push(anchor);
    await waitFor(() => hub.stats().channels === 1, { what: 'the subscription' });
    const sent: [string, string][] = [];
    const send = async (channel: string, i: number): Promise<void> => {
      sent.push([channel, (await hub.sendEvent('message', { i }, channel)).id as string]);
    };
    for (let i = 0; i < BURST; i++) await send(i % 3 === 0 ? (users[i % users.length] as string) : 'all', i);
    await anchor.waitForEvents(sent.filter(([c]) => c === 'all').length, 20_000);

    const before = hub.stats();
    const lastSeen = (sent[49] as [string, string])[1];
    const opening = users.map((user) => SseReader.open(`${url}/?channels=all,${user}`, { 'Last-Event-ID': lastSeen }));
    for (let i = 0; i < LIVE; i++) await send(i % 2 === 0 ? (users[i] as string) : 'all', BURST + i);
    const clients = await Promise.all(opening);
    readers.push(...clients);
    const expectedOf = (user: string): string[] =>
      sent
        .slice(50)
        .filter(([channel]) => channel === 'all' || channel === user)
        .map(([, id]) => id);
    for (const [i, client] of clients.entries()) {
      await client.waitForEvents(expectedOf(users[i] as string).length, 30_000);
    }
    for (const [i, client] of clients.entries()) {
      expect(client.events.map((e) => e.id as string)).toEqual(expectedOf(users[i] as string));
    }
    const after = hub.stats();
    const cacheReads =
      after.historyCacheFillReads - before.historyCacheFillReads + after.historyCacheMisses - before.historyCacheMisses;
    // About one fill per own channel plus the pages of `all`; uncached, each
    // client would read both channels a page at a time.
    expect(after.historyCacheHits - before.historyCacheHits).toBeGreaterThanOrEqual(users.length);
    expect(cacheReads).toBeLessThan(users.length * 2);
  }, 90_000);

  test.each([
    [64 * 1024, 'held within 64 KiB'],
    [0, 'off'],
  ])(
    'historyCacheBytes %d (%s): 20 clients resuming over 300 KB of history get each event once',
    async (bytes) => {
      const small = createServer({
        hubOptions: { broker: 'redis', redisUrl: redis.url, history: HISTORY, historyCacheBytes: bytes },
      });
      try {
        const base = `http://127.0.0.1:${(await small.listen(0)).port}`;
        const { hub } = small;
        await (hub.broker as RedisBroker).ready();
        const anchor = await SseReader.open(`${base}/?channels=big`);
        readers.push(anchor);
        await waitFor(() => hub.stats().channels === 1, { what: 'the subscription' });
        const sent: string[] = [];
        const kilobyte = 'x'.repeat(1000);
        for (let i = 0; i < BURST; i++)
          sent.push((await hub.sendEvent('message', `${i} ${kilobyte}`, 'big')).id as string);
        await anchor.waitForEvents(BURST, 20_000);
        let peak = 0;
        const watch = setInterval(() => (peak = Math.max(peak, hub.stats().historyCacheBytes)), 5);
        const clients = await Promise.all(
          Array.from({ length: 20 }, () =>
            SseReader.open(`${base}/?channels=big`, { 'Last-Event-ID': sent[0] as string }),
          ),
        );
        readers.push(...clients);
        for (const client of clients) await client.waitForEvents(BURST - 1, 30_000);
        clearInterval(watch);
        peak = Math.max(peak, hub.stats().historyCacheBytes);
        for (const client of clients) expect(client.events.map((e) => e.id)).toEqual(sent.slice(1));
        const stats = hub.stats();
        if (bytes === 0) {
          // No cache: every page came from Redis, as without one.
          expect(stats.historyCacheHits + stats.historyCacheFillReads + peak).toBe(0);
        } else {
          expect(peak).toBeGreaterThan(0);
          expect(peak).toBeLessThanOrEqual(bytes);
          // 300 KB do not fit: the cache served what it held and Redis the rest.
          expect(stats.historyCacheFillReads + stats.historyCacheMisses).toBeGreaterThan(0);
        }
      } finally {
        await small.close();
      }
    },
    90_000,
  );
});
