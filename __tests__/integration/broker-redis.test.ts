// The Broker contract against RedisBroker and a private redis-server.
import { RedisBroker } from '../../src/brokers/redis';
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
