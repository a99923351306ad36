// Fan-out over real sockets: one broker subscription per
// channel per process (PUBSUB NUMSUB), counters back to zero, no leaked
// timers or listeners after 1000 connect/disconnect cycles, one event to
// 1000 subscribers, and a closed connection leaves all its channels at once.
import type { SseServer } from '../../src/cli/server';
import type { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';
import { startRedisSse, type RedisSse } from '../helpers/redis-sse';

const N = 1000;

describeWithTools(['redis-server'], 'fan-out and reference counting', () => {
  let redis: RedisServer;
  let sse: SseServer;
  let base: string;
  let readers: SseReader[] = [];

  let stack: RedisSse;
  beforeAll(async () => {
    stack = await startRedisSse();
    ({ redis, sse, base } = stack);
  });
  afterAll(async () => {
    await stack?.stop();
  });
  afterEach(async () => {
    for (const r of readers) r.close();
    readers = [];
    await waitFor(() => sse.hub.stats().connections === 0, { timeout: 10_000, what: 'every stream to close' });
  });

  async function openMany(count: number, channels: string, batch = 100): Promise<SseReader[]> {
    const opened: SseReader[] = [];
    for (let i = 0; i < count; i += batch) {
      const group = await Promise.all(
        Array.from({ length: Math.min(batch, count - i) }, () => SseReader.open(`${base}/?channels=${channels}`)),
      );
      opened.push(...group);
      readers.push(...group);
    }
    return opened;
  }

  const activeTimers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

  test(`${N} connections on \`all\`: PUBSUB NUMSUB all = 1, every one gets the event; 0 when all are gone`, async () => {
    const many = await openMany(N, 'all');
    expect(many.every((r) => r.status === 200)).toBe(true);
    await waitFor(() => sse.hub.stats().connections === N, { what: `${N} streams` });
    expect(sse.hub.stats()).toMatchObject({ connections: N, channels: 1 });
    await waitFor(async () => (await redis.numsub('all')) === 1, { what: 'SUBSCRIBE all' });
    expect(await redis.numsub('all')).toBe(1);

    expect(await redis.publish('all', '["message", "to everyone"]')).toBe(1);
    await waitFor(() => many.every((r) => r.events.length === 1), { timeout: 10_000, what: 'every stream to get it' });
    expect(new Set(many.map((r) => r.raw)).size).toBe(1);
    expect(sse.hub.stats()).toMatchObject({ eventsReceived: 1, framesWritten: N });

    for (const r of many) r.close();
    await waitFor(() => sse.hub.stats().connections === 0, { timeout: 10_000, what: 'every stream to close' });
    await waitFor(async () => (await redis.numsub('all')) === 0, { what: 'UNSUBSCRIBE all' });
    expect(sse.hub.stats()).toMatchObject({ connections: 0, channels: 0 });
  });

  test(`no leaked timers, listeners or subscriptions after ${N} connect/disconnect cycles`, async () => {
    // Warm up once so lazily created resources exist before the baseline.
    for (const r of await openMany(1, 'all,warm')) r.close();
    await waitFor(() => sse.hub.stats().connections === 0, { what: 'warm-up to close' });
    await waitFor(async () => (await redis.numsub('all')) === 0, { what: 'warm-up UNSUBSCRIBE' });
    const timers = activeTimers();

    for (let round = 0; round < N / 100; round++) {
      const group = await openMany(100, `all,c${round}`);
      for (const r of group) r.close();
      await waitFor(() => sse.hub.stats().connections === 0, { what: `round ${round} to close` });
    }
    readers = [];
    await waitFor(async () => (await redis.numsub('all')) === 0, { what: 'UNSUBSCRIBE all' });
    const channels = (await redis.command('PUBSUB', 'CHANNELS')).split('\r\n').filter((l) => /^c\d/.test(l));
    expect(channels).toEqual([]);
    expect(sse.hub.stats()).toMatchObject({ connections: 0, channels: 0 });
    await waitFor(() => new Promise<boolean>((resolve) => sse.server.getConnections((_e, n) => resolve(n === 0))), {
      what: 'server sockets to close',
    });
    await waitFor(() => activeTimers() <= timers, { what: `timers back to ${timers} (have ${activeTimers()})` });
    expect(sse.server.listenerCount('request')).toBe(1);
  });

  test('a closed connection is dropped from every one of its channels at once', async () => {
    const [multi] = await openMany(1, 'a,b,c');
    const [onB] = await openMany(1, 'b');
    await waitFor(() => sse.hub.stats().connections === 2, { what: 'two streams' });
    expect(sse.hub.stats().channels).toBe(3);
    multi?.close();
    await waitFor(() => sse.hub.stats().connections === 1, { what: 'one stream' });
    expect(sse.hub.stats().channels).toBe(1);
    await waitFor(async () => (await redis.numsub('a')) === 0 && (await redis.numsub('c')) === 0, {
      what: 'UNSUBSCRIBE a and c',
    });
    expect(await redis.numsub('b')).toBe(1);
    await redis.publish('b', '["message", "still here"]');
    await onB?.waitForEvents(1);
    expect(onB?.events).toEqual([{ event: 'message', data: 'still here' }]);
  });
});
