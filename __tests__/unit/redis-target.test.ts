// cli/redis-target.ts: which Redis the command-line tools use, and the usage
// errors for a bad mix; brokers/redis-link.ts parseHostPort for sentinels.
import { parseHostPort } from '../../src/brokers/redis-link';
import { redisTarget, type RedisTargetFlags } from '../../src/cli/redis-target';

const base: RedisTargetFlags = { pubsub: 'classic', redisTls: false };

test('no target: undefined (memory broker, or POST /publish for sse-send)', () => {
  expect(redisTarget(base, {})).toBeUndefined();
});

test('--redis, or SSE_REDIS_URL when no HA target is asked for', () => {
  expect(redisTarget({ ...base, redis: 'redis://a:1' }, {})).toEqual({ label: 'redis://a:1', redisUrl: 'redis://a:1' });
  expect(redisTarget(base, { SSE_REDIS_URL: 'redis://b:2' })).toMatchObject({ redisUrl: 'redis://b:2' });
  expect(redisTarget({ ...base, redisCluster: ['redis://c:3'] }, { SSE_REDIS_URL: 'redis://b:2' })).toMatchObject({
    redisCluster: { nodes: ['redis://c:3'] },
  });
});

test('sentinel: name, sentinels and both sets of credentials', () => {
  const target = redisTarget(
    {
      ...base,
      redisSentinel: ['s1:26379', 's2:26379'],
      redisSentinelName: 'mymaster',
      redisPassword: 'node',
      redisSentinelPassword: 'sent',
      redisTls: true,
    },
    {},
  );
  expect(target).toMatchObject({
    label: 'sentinel mymaster',
    redisSentinel: {
      name: 'mymaster',
      sentinels: ['s1:26379', 's2:26379'],
      password: 'node',
      sentinelPassword: 'sent',
      tls: true,
    },
  });
});

test('usage errors name the fix', () => {
  expect(redisTarget({ ...base, redisSentinel: ['s:1'] }, {})).toMatch(/needs --redis-sentinel-name/);
  expect(redisTarget({ ...base, redisSentinelName: 'm' }, {})).toMatch(/needs --redis-sentinel/);
  expect(redisTarget({ ...base, redis: 'redis://a:1', redisCluster: ['redis://b:1'] }, {})).toMatch(
    /exclude each other/,
  );
  expect(redisTarget({ ...base, pubsub: 'sharded', redis: 'redis://a:1' }, {})).toMatch(/needs --redis-cluster/);
});

test('parseHostPort: host:port and [IPv6]:port; anything else is refused', () => {
  expect(parseHostPort('10.0.0.1:26379')).toEqual({ host: '10.0.0.1', port: 26379 });
  expect(parseHostPort('[::1]:26379')).toEqual({ host: '::1', port: 26379 });
  expect(() => parseHostPort('nohost')).toThrow(/host:port/);
  expect(() => parseHostPort('h:0')).toThrow(/host:port/);
  expect(() => parseHostPort('h:70000')).toThrow(/host:port/);
});
