// docs/guarantees.md "Broker faults": Redis killed under 100 open
// streams, and the pub/sub connection cut while another process publishes.
import { createServer, type SseServer } from '../../src/cli/server';
import { createHub } from '../../src/create-hub';
import type { Hub } from '../../src/core/hub';
import { BrokerUnavailableError } from '../../src/core/errors';
import type { RedisBroker } from '../../src/brokers/redis';
import { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { SseReader, type ParsedEvent } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

const HISTORY = { size: 1000, ttl: 600 };

describeWithTools(['redis-server'], 'broker faults', () => {
  let redis: RedisServer;
  let sse: SseServer;
  let url: string;
  const readers: SseReader[] = [];
  const hubs: Hub[] = [];

  beforeEach(async () => {
    redis = await RedisServer.start();
    sse = createServer({ hubOptions: { broker: 'redis', redisUrl: redis.url, history: HISTORY } });
    url = `http://127.0.0.1:${(await sse.listen(0)).port}`;
    await (sse.hub.broker as RedisBroker).ready();
  });
  afterEach(async () => {
    for (const reader of readers.splice(0)) reader.close();
    for (const hub of hubs.splice(0)) await hub.close();
    await sse.close();
    await redis.stop();
  });

  const health = async (): Promise<number> => (await fetch(`${url}/healthz`)).status;

  test('SIGKILL under 100 clients: streams stay open, 503 then 200, new events reach all 100 on the same connections', async () => {
    for (let i = 0; i < 100; i++) readers.push(await SseReader.open(`${url}/?channels=all`));
    await waitFor(async () => (await redis.numsub('all')) === 1);
    await sse.hub.sendEvent('m', 'before', 'all');
    await waitFor(() => readers.every((r) => r.events.length === 1), { what: 'the first event at all 100' });

    await redis.stop('SIGKILL');
    const killedAt = Date.now();
    await waitFor(async () => (await health()) === 503, { timeout: 5000, what: '/healthz 503' });
    const downAfter = Date.now() - killedAt;
    const refused = await sse.hub.sendEvent('m', 'lost', 'all').then(
      () => 'sent',
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(BrokerUnavailableError);
    // A new subscription is still accepted while Redis is down (docs/protocol.md).
    const late = await SseReader.open(`${url}/?channels=all`);
    expect(late.status).toBe(200);
    readers.push(late);
    expect(readers.some((r) => r.ended)).toBe(false);

    await redis.restart();
    const restartedAt = Date.now();
    await waitFor(async () => (await health()) === 200, { timeout: 10_000, what: '/healthz 200' });
    const upAfter = Date.now() - restartedAt;
    await waitFor(() => sse.hub.sendEvent('m', 'after', 'all').then(() => true), {
      timeout: 10_000,
      what: 'a publish after the restart',
    });
    await waitFor(() => readers.every((r) => r.events.some((e) => e.data === 'after')), {
      timeout: 10_000,
      what: '"after" at all 101 clients',
    });
    expect(readers.some((r) => r.ended)).toBe(false);
    expect(sse.hub.stats().connections).toBe(101);
    // Figures for docs/guarantees.md, "Broker faults".
    console.info(`faults: /healthz 503 ${downAfter} ms after SIGKILL, 200 ${upAfter} ms after restart`);
  });

  test('/healthz follows the pub/sub connection alone: 503 while only it is away, 200 once it is back', async () => {
    const reader = await SseReader.open(`${url}/?channels=all`);
    readers.push(reader);
    await waitFor(async () => (await redis.numsub('all')) === 1, { what: 'SUBSCRIBE all' });
    expect(await health()).toBe(200);
    // Cut the subscribing connection and, in the same breath, hold every
    // command for 1.5 s: the reconnecting subscriber cannot get ready, while
    // the publishing connection stays connected the whole time.
    const replies = await redis.pipeline(['CLIENT', 'KILL', 'TYPE', 'pubsub'], ['CLIENT', 'PAUSE', '1500', 'ALL']);
    expect(replies).toMatch(/^:1\r\n\+OK\r\n$/);
    const down = await waitFor(
      async () => {
        const res = await fetch(`${url}/healthz`);
        return res.status === 503 ? res : undefined;
      },
      { timeout: 1000, what: '/healthz 503' },
    );
    expect(await down.json()).toMatchObject({ ok: false, broker: 'redis' });
    await waitFor(async () => (await health()) === 200, { timeout: 10_000, what: '/healthz 200' });
    await waitFor(async () => (await redis.numsub('all')) === 1, { what: 'SUBSCRIBE all again' });
    await sse.hub.sendEvent('m', 'after', 'all');
    await waitFor(() => reader.events.some((e) => e.data === 'after'), { what: '"after" on the same stream' });
    expect(reader.ended).toBe(false);
  });

  test('CLIENT KILL TYPE pubsub while another process publishes: the hub catches up from the streams', async () => {
    const publisher = createHub({ broker: 'redis', redisUrl: redis.url, history: HISTORY });
    hubs.push(publisher);
    await (publisher.broker as RedisBroker).ready();
    const reader = await SseReader.open(`${url}/?channels=k`);
    readers.push(reader);
    await waitFor(async () => (await redis.numsub('k')) === 1);

    let n = 0;
    let publishing = true;
    const loop = (async () => {
      while (publishing) {
        await publisher.sendEvent('tick', String(n++), 'k');
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    try {
      for (let kill = 0; kill < 3; kill++) {
        const before = reader.events.length;
        await waitFor(() => reader.events.length >= before + 30, { what: `events before kill ${kill}` });
        expect(await redis.command('CLIENT', 'KILL', 'TYPE', 'pubsub')).toMatch(/^:[1-9]/);
      }
      const before = reader.events.length;
      await waitFor(() => reader.events.length >= before + 30, { what: 'events after the last kill' });
    } finally {
      publishing = false;
      await loop;
    }
    await waitFor(() => reader.events.length === n, { what: `all ${n} events (have ${reader.events.length})` });
    expect(reader.events.map((e: ParsedEvent) => Number(e.data))).toEqual([...Array(n).keys()]);
    expect((sse.hub.broker as RedisBroker).counters.reconnects).toBeGreaterThanOrEqual(3);
    // The events published while the subscription was away came from the stream.
    expect(sse.hub.stats().eventsReplayed).toBeGreaterThan(0);
    console.info(
      `faults: ${n} events across 3 pub/sub kills, ${sse.hub.stats().eventsReplayed} caught up from streams`,
    );
  });
});
