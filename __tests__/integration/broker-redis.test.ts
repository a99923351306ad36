// The Broker contract against RedisBroker and a private redis-server.
import { RedisBroker } from '../../src/brokers/redis';
import { BrokerUnavailableError } from '../../src/core/errors';
import { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { waitFor } from '../helpers/wait-for';
import { brokerContract } from './broker.contract';

describeWithTools(['redis-server'], 'RedisBroker', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => {
    await redis.stop();
  });

  brokerContract('redis', async () => {
    const broker = new RedisBroker({ url: redis.url });
    return { broker, ready: () => broker.ready() };
  });

  describe('redis specifics', () => {
    let broker: RedisBroker;
    afterEach(async () => {
      await broker.close();
    });

    test('channelPrefix: events travel on <prefix><channel> in the django_sse format', async () => {
      broker = new RedisBroker({ url: redis.url, channelPrefix: 'sse:' });
      await broker.ready();
      const got: unknown[] = [];
      await broker.subscribe('all', (e) => got.push(e));
      expect(await redis.numsub('sse:all')).toBe(1);
      expect(await redis.numsub('all')).toBe(0);
      expect(await redis.publish('sse:all', '["message", "x", "9"]')).toBe(1);
      await broker.publish('all', { event: 'm', data: 'y' });
      await waitForLength(got, 2);
      expect(got).toEqual([
        { event: 'message', data: 'x', id: '9' },
        { event: 'm', data: 'y' },
      ]);
    });

    test('bad payloads are delivered raw and counted', async () => {
      broker = new RedisBroker({ url: redis.url });
      await broker.ready();
      const got: unknown[] = [];
      await broker.subscribe('raw', (e) => got.push(e));
      await redis.publish('raw', 'plain text');
      await redis.publish('raw', '["good", "x"]');
      await waitForLength(got, 2);
      expect(got).toEqual([
        { event: 'message', data: 'plain text' },
        { event: 'good', data: 'x' },
      ]);
      expect(broker.counters.badPayloads).toBe(1);
    });

    // Regression: node-redis kept a PUBLISH not yet written when the socket
    // died in its offline queue, so it hung until Redis came back (sendEvent
    // only escaped through its 5 s timeout) and was then sent anyway, after
    // the caller had been told it failed.
    test('a publish issued as Redis dies rejects by itself instead of waiting in the offline queue', async () => {
      const own = await RedisServer.start();
      broker = new RedisBroker({ url: own.url });
      try {
        await broker.ready();
        await own.stop('SIGKILL');
        const outcome = await Promise.race([
          broker.publish('all', { event: 'm', data: 'x' }).then(
            () => 'resolved',
            (err: unknown) => err,
          ),
          new Promise((resolve) => setTimeout(resolve, 3000, 'still pending after 3 s')),
        ]);
        expect(outcome).toBeInstanceOf(BrokerUnavailableError);
        expect(outcome).toMatchObject({ broker: 'redis' });
      } finally {
        await own.stop();
      }
    });

    test('health follows the subscriber connection', async () => {
      broker = new RedisBroker({ url: redis.url });
      await broker.ready();
      expect(broker.isHealthy()).toBe(true);
      const changes: boolean[] = [];
      broker.onHealthChange((h) => changes.push(h));
      await broker.close();
      expect(broker.isHealthy()).toBe(false);
      expect(changes).toEqual([false]);
    });
  });
});

async function waitForLength(list: unknown[], n: number): Promise<void> {
  await waitFor(() => list.length >= n, { timeout: 5000, what: `${n} events` });
}
