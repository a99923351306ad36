// sendEvent(type, data, channel) and hub.sendEvent against a
// real redis-server — channel required, string or JSON data, resolves once
// Redis took the event, rejects within 5 s naming the broker when Redis is
// killed (never hangs), and works again once Redis is back.
import { configure, sendEvent, fromQuery, sseMiddleware, BrokerUnavailableError, type Hub } from '../../src/index';
import type { RedisBroker } from '../../src/brokers/redis';
import { listen, type Listening } from '../helpers/listen';
import { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

describeWithTools(['redis-server'], 'sendEvent with the redis broker', () => {
  let redis: RedisServer;
  let hub: Hub;
  let server: Listening;
  let readers: SseReader[] = [];

  beforeEach(async () => {
    redis = await RedisServer.start();
    hub = configure({ redisUrl: redis.url });
    expect(hub.broker.name).toBe('redis');
    await (hub.broker as RedisBroker).ready();
    server = await listen(sseMiddleware({ channels: fromQuery() }));
  });
  afterEach(async () => {
    for (const r of readers) r.close();
    readers = [];
    await hub.close();
    await server.close();
    await redis.stop();
  });

  async function subscriber(channel: string): Promise<SseReader> {
    const reader = await SseReader.open(`${server.url}/?channels=${channel}`);
    readers.push(reader);
    expect(reader.status).toBe(200);
    await waitFor(async () => (await redis.numsub(channel)) === 1, { what: `SUBSCRIBE ${channel}` });
    return reader;
  }

  test('channel is required: TypeError, from sendEvent and hub.sendEvent', async () => {
    const missing = undefined as unknown as string;
    for (const send of [sendEvent, hub.sendEvent.bind(hub)]) {
      const err = await send('message', 'x', missing).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TypeError);
      expect((err as Error).message).toMatch(/channel must be a string channel name/);
    }
  });

  test('data is a string (verbatim) or a JSON value (encoded); resolves once Redis took it', async () => {
    const reader = await subscriber('all');
    await expect(sendEvent('message', '{"type": "message"}', 'all')).resolves.toEqual({});
    await expect(sendEvent('update', { type: 'message', user: 'tug' }, 'all')).resolves.toEqual({});
    await expect(hub.sendEvent('n', [1, 2], 'all')).resolves.toEqual({});
    await reader.waitForEvents(3);
    expect(reader.events).toEqual([
      { event: 'message', data: '{"type": "message"}' },
      { event: 'update', data: '{"type":"message","user":"tug"}' },
      { event: 'n', data: '[1,2]' },
    ]);
  });

  test('rejects within 5 s naming the broker when redis-server is killed, every time; works again after', async () => {
    const reader = await subscriber('all');
    await redis.stop('SIGKILL');
    for (const send of [sendEvent, hub.sendEvent.bind(hub), sendEvent]) {
      const started = Date.now();
      const err = await send('message', 'while down', 'all').catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(5500);
      expect(err).toBeInstanceOf(BrokerUnavailableError);
      expect(err).toMatchObject({ broker: 'redis', code: 'SSE_ERR_BROKER_UNAVAILABLE' });
      expect((err as Error).message).toMatch(/redis broker/);
    }
    // The open stream stayed open through the outage.
    expect(reader.ended).toBe(false);

    await redis.restart();
    await waitFor(() => hub.isHealthy(), { timeout: 10_000, what: 'the hub to reconnect' });
    await waitFor(async () => (await redis.numsub('all')) === 1, { what: 're-SUBSCRIBE all' });
    // The publishing connection has its own backoff: retry until it is back.
    await waitFor(() => sendEvent('message', 'back', 'all').then(() => true), {
      timeout: 10_000,
      what: 'sendEvent to succeed again',
    });
    await reader.waitForEvents(1);
    // Exactly one event: none of the rejected sends was delivered late.
    await sendEvent('message', 'marker', 'all');
    await reader.waitForEvents(2);
    expect(reader.events).toEqual([
      { event: 'message', data: 'back' },
      { event: 'message', data: 'marker' },
    ]);
  });
});
