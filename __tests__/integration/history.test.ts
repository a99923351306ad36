// docs/guarantees.md "History and resume" against a real
// redis-server and real HTTP streams, for both brokers.
import { createServer, type SseServer } from '../../src/cli/server';
import { createHub } from '../../src/create-hub';
import type { Hub } from '../../src/core/hub';
import { compareIds, isHistoryId } from '../../src/core/history';
import { RedisBroker } from '../../src/brokers/redis';
import { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { runSend } from '../helpers/run-cli';
import { SseReader, type ParsedEvent } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

const HISTORY = { size: 1000, ttl: 600 };

function ids(events: ParsedEvent[]): string[] {
  return events.filter((e) => e.event !== 'gap').map((e) => e.id as string);
}

function expectIncreasing(list: string[]): void {
  for (let i = 1; i < list.length; i++) expect(compareIds(list[i - 1] as string, list[i] as string)).toBeLessThan(0);
}

describeWithTools(['redis-server'], 'history with the redis broker', () => {
  let redis: RedisServer;
  const opened: { close(): unknown }[] = [];
  const track = <T extends { close(): unknown }>(thing: T): T => {
    opened.push(thing);
    return thing;
  };

  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => {
    await redis.stop();
  });
  afterEach(async () => {
    for (const thing of opened.splice(0).reverse()) await thing.close();
  });

  async function hub(history: { size: number; ttl: number } = HISTORY): Promise<Hub> {
    const created = track(createHub({ broker: 'redis', redisUrl: redis.url, history }));
    await (created.broker as RedisBroker).ready();
    return created;
  }

  async function server(history: { size: number; ttl: number } = HISTORY): Promise<{ sse: SseServer; url: string }> {
    const sse = track(createServer({ hubOptions: { broker: 'redis', redisUrl: redis.url, history } }));
    const address = await sse.listen(0);
    await (sse.hub.broker as RedisBroker).ready();
    return { sse, url: `http://127.0.0.1:${address.port}` };
  }

  async function open(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
    const reader = track(await SseReader.open(url, headers));
    expect(reader.status).toBe(200);
    return reader;
  }

  test('ids increase across channels, hubs and sse-send, and after Redis restarts empty', async () => {
    const [a, b] = [await hub(), await hub()];
    const sent: string[] = [];
    for (let i = 0; i < 30; i++) {
      const result = await (i % 2 ? a : b).sendEvent('m', `${i}`, i % 3 ? 'one' : 'two');
      sent.push(result.id as string);
    }
    const cli = await runSend(['--redis', redis.url, '--history', '100', 'one', 'm', 'from-cli']);
    expect(cli.code).toBe(0);
    const cliId = cli.stdout.trim();
    expect(isHistoryId(cliId)).toBe(true);
    sent.push(cliId);
    expectIncreasing(sent);

    await redis.stop('SIGKILL');
    await redis.restart(); // empty: no persistence
    await waitFor(async () => (await a.sendEvent('m', 'after', 'one').catch(() => undefined))?.id, {
      timeout: 10_000,
      what: 'a publish after the restart',
    }).then((result) => sent.push(result));
    expectIncreasing(sent);
    expect(new Set(sent).size).toBe(sent.length);
  });

  test('the event, its stream entry and its PUBLISH come from one script; a bare PUBLISH stays live-only', async () => {
    const { url, sse } = await server();
    const reader = await open(`${url}/?channels=news`);
    await waitFor(async () => (await redis.numsub('news')) === 1);
    const { id } = await sse.hub.sendEvent('update', { n: 1 }, 'news');
    await redis.publish('news', '["message", "bare"]');
    const events = await reader.waitForEvents(2);
    expect(events[0]).toEqual({ event: 'update', data: '{"n":1}', id });
    expect(events[1]).toEqual({ event: 'message', data: 'bare' });
    const entries = await redis.command('XRANGE', 'sse-hub:history:news', '-', '+');
    expect(entries).toContain(id as string);
    expect(entries).not.toContain('bare');
  });

  test('Last-Event-ID (header or ?lastEventId=) replays every missed event in order, then live', async () => {
    const { url, sse } = await server();
    const first = await open(`${url}/?channels=a,b`);
    const publisher = await hub();
    for (let i = 0; i < 4; i++) await publisher.sendEvent('m', `${i}`, i % 2 ? 'a' : 'b');
    const seen = await first.waitForEvents(4);
    first.close();
    await waitFor(() => sse.hub.stats().connections === 0);
    const missed = [];
    for (let i = 4; i < 10; i++) missed.push((await publisher.sendEvent('m', `${i}`, i % 2 ? 'a' : 'b')).id);
    await publisher.sendEvent('m', 'elsewhere', 'c'); // not one of the client's channels

    const lastId = seen[1]?.id as string;
    for (const resumed of [
      await open(`${url}/?channels=a,b`, { 'Last-Event-ID': lastId }),
      await open(`${url}/?channels=a,b&lastEventId=${encodeURIComponent(lastId)}`),
    ]) {
      await resumed.waitForEvents(8);
      await publisher.sendEvent('m', 'live', 'a');
      const events = await resumed.waitForEvents(9);
      expect(events.map((e) => e.data)).toEqual(['2', '3', '4', '5', '6', '7', '8', '9', 'live']);
      expect(ids(events).slice(2, 8)).toEqual(missed);
      expectIncreasing(ids(events));
    }
  });

  test('where history no longer reaches back, a `gap` event comes first, then what is kept', async () => {
    const { url } = await server({ size: 5, ttl: 600 });
    const publisher = await hub({ size: 5, ttl: 600 });
    const { id: first } = await publisher.sendEvent('m', '0', 'g');
    const rest = [];
    for (let i = 1; i <= 10; i++) rest.push((await publisher.sendEvent('m', `${i}`, 'g')).id);
    const reader = await open(`${url}/?channels=g`, { 'Last-Event-ID': first as string });
    const events = await reader.waitForEvents(6);
    expect(events[0]?.event).toBe('gap');
    expect(JSON.parse(events[0]?.data as string)).toEqual({ lastEventId: first, oldestId: rest[5], channel: 'g' });
    expect(events.slice(1).map((e) => e.data)).toEqual(['6', '7', '8', '9', '10']);

    // A client that is still within the kept history gets no gap.
    const recent = await open(`${url}/?channels=g`, { 'Last-Event-ID': rest[7] as string });
    const tail = await recent.waitForEvents(2);
    expect(tail.map((e) => e.event)).toEqual(['m', 'm']);
    expect(tail.map((e) => e.data)).toEqual(['9', '10']);
  });

  test('a steady publisher while a client reconnects 20 times: no gap, no repeat', async () => {
    const { url } = await server();
    const publisher = await hub();
    let n = 0;
    let publishing = true;
    const published: string[] = [];
    const loop = (async () => {
      while (publishing) {
        published.push(String(n));
        await publisher.sendEvent('tick', String(n++), n % 2 ? 'x' : 'y');
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    const received: ParsedEvent[] = [];
    let lastId: string | undefined;
    try {
      for (let round = 0; round < 20; round++) {
        const reader = await open(`${url}/?channels=x,y`, lastId === undefined ? {} : { 'Last-Event-ID': lastId });
        const before = received.length;
        reader.on('event', (event: ParsedEvent) => received.push(event));
        await waitFor(() => received.length >= before + 5, { timeout: 10_000, what: `events in round ${round}` });
        reader.removeAllListeners('event'); // what arrives after this, the client never saw
        reader.close();
        lastId = received[received.length - 1]?.id;
      }
    } finally {
      publishing = false;
      await loop;
    }
    const data = received.map((e) => Number(e.data));
    expect(received.every((e) => e.event === 'tick')).toBe(true);
    const start = data[0] as number;
    expect(data).toEqual(data.map((_, i) => start + i)); // no gap, no repeat, in order
    expect(data.length).toBeGreaterThan(100);
  });
});

describe('history with the memory broker', () => {
  let sse: SseServer;
  let url: string;
  afterEach(() => sse.close());

  test('replays from the ring buffer, with a gap event once it has wrapped', async () => {
    sse = createServer({ hubOptions: { broker: 'memory', history: { size: 3, ttl: 60 } } });
    url = `http://127.0.0.1:${(await sse.listen(0)).port}`;
    const sent = [];
    for (let i = 0; i < 6; i++) sent.push((await sse.hub.sendEvent('m', `${i}`, 'mem')).id as string);
    expectIncreasing(sent);

    const within = await SseReader.open(`${url}/?channels=mem`, { 'Last-Event-ID': sent[3] as string });
    const wrapped = await SseReader.open(`${url}/?channels=mem`, { 'Last-Event-ID': sent[0] as string });
    try {
      expect((await within.waitForEvents(2)).map((e) => e.data)).toEqual(['4', '5']);
      const events = await wrapped.waitForEvents(4);
      expect(events.map((e) => e.event)).toEqual(['gap', 'm', 'm', 'm']);
      expect(JSON.parse(events[0]?.data as string)).toMatchObject({ lastEventId: sent[0], oldestId: sent[3] });
      await sse.hub.sendEvent('m', 'live', 'mem');
      await within.waitForEvents(3);
      expect(within.events.map((e) => e.data)).toEqual(['4', '5', 'live']);
    } finally {
      within.close();
      wrapped.close();
    }
  });
});
