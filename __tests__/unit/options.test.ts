// core/options.ts: defaults merged once, env lookups, eager validation (TypeError naming the option).
import { OptionError } from '../../src/core/errors';
import { silentLogger } from '../../src/core/logger';
import { redisUrlFromEnv, resolveHubOptions } from '../../src/core/options';
import { MemoryBroker } from '../../src/brokers/memory';

describe('resolveHubOptions', () => {
  test('defaults: memory broker, documented numbers, no history, silent logger', () => {
    expect(resolveHubOptions({}, {})).toEqual({
      broker: 'memory',
      redisUrl: undefined,
      redisSentinel: undefined,
      redisCluster: undefined,
      pubsub: 'classic',
      redisWaitReplicas: 0,
      channelPrefix: '',
      heartbeat: 15_000,
      heartbeatEvent: false,
      retry: 3000,
      maxChannels: 64,
      maxBufferedBytes: 4 * 1024 * 1024,
      sendTimeout: 5000,
      history: null,
      presenceChannels: [],
      presenceDebounce: 2000,
      presenceTtl: 15,
      maxConnections: 20_000,
      maxConnectionsPerIp: 0,
      maxReplays: 256,
      replayStallTimeout: 30_000,
      historyCacheBytes: 64 * 1024 * 1024,
      drainTime: 0,
      logger: silentLogger,
    });
  });

  test('REDIS_URL or SSE_REDIS_URL in the environment selects redis; SSE_REDIS_URL wins', () => {
    expect(resolveHubOptions({}, { REDIS_URL: 'redis://h:1' })).toMatchObject({
      broker: 'redis',
      redisUrl: 'redis://h:1',
    });
    expect(resolveHubOptions({}, { REDIS_URL: 'redis://a:1', SSE_REDIS_URL: 'redis://b:2' }).redisUrl).toBe(
      'redis://b:2',
    );
  });

  test('a redisUrl without broker means redis; an explicit broker wins over the environment', () => {
    expect(resolveHubOptions({ redisUrl: 'redis://x:1' }, {}).broker).toBe('redis');
    expect(resolveHubOptions({ broker: 'memory' }, { REDIS_URL: 'redis://x:1' }).broker).toBe('memory');
  });

  test('a Sentinel or a Cluster selects redis, from options or the environment', () => {
    const sentinel = { name: 'mymaster', sentinels: ['127.0.0.1:26379'] };
    expect(resolveHubOptions({ redisSentinel: sentinel }, {})).toMatchObject({
      broker: 'redis',
      redisSentinel: sentinel,
    });
    expect(
      resolveHubOptions(
        {},
        {
          SSE_REDIS_SENTINEL: 'a:1, b:2',
          SSE_REDIS_SENTINEL_NAME: 'm',
          SSE_REDIS_PASSWORD: 'p',
          SSE_REDIS_SENTINEL_PASSWORD: 's',
        },
      ).redisSentinel,
    ).toMatchObject({ name: 'm', sentinels: ['a:1', 'b:2'], password: 'p', sentinelPassword: 's' });
    expect(
      resolveHubOptions({}, { SSE_REDIS_CLUSTER: 'redis://a:1,redis://b:2', SSE_PUBSUB: 'sharded' }),
    ).toMatchObject({ broker: 'redis', redisCluster: { nodes: ['redis://a:1', 'redis://b:2'] }, pubsub: 'sharded' });
    // An explicit sentinel is not mixed with a REDIS_URL left in the environment.
    expect(resolveHubOptions({ redisSentinel: sentinel }, { REDIS_URL: 'redis://x:1' }).redisUrl).toBeUndefined();
  });

  test('HA options are checked when the hub is created, naming what to fix', () => {
    const bad =
      (options: object, env: NodeJS.ProcessEnv = {}) =>
      () =>
        resolveHubOptions(options, env);
    expect(bad({ redisSentinel: { name: '', sentinels: ['a:1'] } })).toThrow(/redisSentinel.name/);
    expect(bad({ redisSentinel: { name: 'm', sentinels: [] } })).toThrow(/at least one sentinel/);
    expect(bad({ redisSentinel: { name: 'm', sentinels: ['nohostport'] } })).toThrow(/host:port/);
    expect(bad({ redisCluster: { nodes: ['http://a:1'] } })).toThrow(/redis:\/\//);
    expect(bad({ redisUrl: 'redis://a:1', redisCluster: { nodes: ['redis://b:1'] } })).toThrow(/only one of/);
    expect(bad({ redisUrl: 'redis://a:1', pubsub: 'sharded' })).toThrow(/needs redisCluster/);
    expect(bad({ redisUrl: 'redis://a:1', redisWaitReplicas: -1 })).toThrow(/redisWaitReplicas/);
    expect(bad({}, { SSE_REDIS_SENTINEL: 'a:1' })).toThrow(OptionError);
  });

  test('a Broker instance is accepted', () => {
    const broker = new MemoryBroker();
    expect(resolveHubOptions({ broker }, {}).broker).toBe(broker);
  });

  test('undefined values do not erase defaults', () => {
    expect(resolveHubOptions({ heartbeat: undefined, retry: undefined }, {})).toMatchObject({
      heartbeat: 15_000,
      retry: 3000,
    });
  });

  test.each([
    [{ heartbeat: -1 }, 'heartbeat must be a positive whole number of ms, got -1'],
    [{ retry: 1.5 }, 'retry must be a positive whole number of ms, got 1.5'],
    [{ maxChannels: 0 }, 'maxChannels must be a positive whole number of channels, got 0'],
    [{ maxBufferedBytes: '4' }, 'maxBufferedBytes must be a positive whole number of bytes, got "4"'],
    [{ sendTimeout: NaN }, 'sendTimeout must be a positive whole number of ms'],
    [{ maxReplays: 0 }, 'maxReplays must be a positive whole number of replays, got 0'],
    [{ replayStallTimeout: -5 }, 'replayStallTimeout must be a positive whole number of ms, got -5'],
    [{ drainTime: -1 }, 'drainTime must be a whole number >= 0 of ms (0: all at once), got -1'],
    [{ drainTime: 2.5 }, 'drainTime must be a whole number >= 0 of ms (0: all at once), got 2.5'],
    [{ historyCacheBytes: -1 }, 'historyCacheBytes must be a whole number >= 0 of bytes (0: no cache), got -1'],
    [{ historyCacheBytes: '64MB' }, 'historyCacheBytes must be a whole number >= 0 of bytes (0: no cache), got "64MB"'],
    [{ broker: 'kafka' }, `broker must be 'memory', 'redis' or a Broker instance, got "kafka"`],
    [{ broker: 'redis' }, "broker 'redis' needs redisUrl"],
    [{ redisUrl: 'http://x' }, 'redisUrl must start with redis:// or rediss://'],
    [{ channelPrefix: 5 }, 'channelPrefix must be a string'],
    [{ history: 'yes' }, 'history must be true, false or { size, ttl }'],
    [{ history: { size: 0 } }, 'history.size must be a positive whole number of events'],
    [{ broker: {} }, 'broker must be a Broker'],
    [{ maxConnections: -1 }, 'maxConnections must be a whole number >= 0 of connections (0: no cap), got -1'],
    [{ maxConnectionsPerIp: 2.5 }, 'maxConnectionsPerIp must be a whole number >= 0'],
  ])('%j is an OptionError (TypeError) when the factory runs', (options, message) => {
    let caught: unknown;
    try {
      resolveHubOptions(options as never, {});
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(OptionError);
    expect(caught).toBeInstanceOf(TypeError);
    expect(caught).toMatchObject({ code: 'SSE_ERR_OPTION' });
    expect((caught as Error).message).toContain(message);
  });

  test('options that are not an object are refused', () => {
    expect(() => resolveHubOptions(null as never, {})).toThrow('createHub options must be an object, got null');
  });

  test('history: true uses the defaults; an object is merged with them', () => {
    expect(resolveHubOptions({ history: true }, {}).history).toEqual({ size: 1000, ttl: 3600 });
    expect(resolveHubOptions({ history: { size: 10 } }, {}).history).toEqual({ size: 10, ttl: 3600 });
    expect(resolveHubOptions({ history: false }, {}).history).toBeNull();
  });
});

test('redisUrlFromEnv ignores empty values', () => {
  expect(redisUrlFromEnv({ SSE_REDIS_URL: '', REDIS_URL: 'redis://a:1' })).toBe('redis://a:1');
  expect(redisUrlFromEnv({ REDIS_URL: '' })).toBeUndefined();
});
