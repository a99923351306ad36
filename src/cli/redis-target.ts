// Which Redis the command-line tools use, from their flags: one URL
// (--redis), a Sentinel-managed master (--redis-sentinel + name) or a Redis
// Cluster (--redis-cluster). Exactly one; a bad mix is a usage error.
import type { RedisClusterOptions, RedisSentinelOptions } from '../core/options.js';

export interface RedisTargetFlags {
  redis?: string;
  redisSentinel?: string[];
  redisSentinelName?: string;
  redisCluster?: string[];
  pubsub: 'classic' | 'sharded';
  redisUsername?: string;
  redisPassword?: string;
  redisSentinelUsername?: string;
  redisSentinelPassword?: string;
  redisTls: boolean;
}

export interface RedisTarget {
  redisUrl?: string;
  redisSentinel?: RedisSentinelOptions;
  redisCluster?: RedisClusterOptions;
  /** What to call it in log lines: the URL, `sentinel NAME` or `cluster`. */
  label: string;
}

/** The target, undefined for none (memory broker / POST /publish), or a usage error message. */
export function redisTarget(
  flags: RedisTargetFlags,
  env: NodeJS.ProcessEnv = process.env,
): RedisTarget | undefined | string {
  const sentinel = flags.redisSentinel?.length ? flags.redisSentinel : undefined;
  const cluster = flags.redisCluster?.length ? flags.redisCluster : undefined;
  // --redis falls back to REDIS_URL / SSE_REDIS_URL only when no HA target is asked for.
  const url = flags.redis ?? (sentinel || cluster ? undefined : env.SSE_REDIS_URL || undefined);
  const given = [url, sentinel, cluster].filter((t) => t !== undefined).length;
  if (given > 1) {
    return '--redis, --redis-sentinel and --redis-cluster exclude each other (check REDIS_URL and the SSE_REDIS_* variables too)';
  }
  if (flags.pubsub === 'sharded' && cluster === undefined) {
    return '--pubsub sharded needs --redis-cluster: sharded pub/sub is a Redis Cluster feature';
  }
  const nodeAuth = { username: flags.redisUsername, password: flags.redisPassword };
  if (sentinel !== undefined) {
    if (!flags.redisSentinelName) {
      return "--redis-sentinel needs --redis-sentinel-name: the master's name in the sentinels' configuration";
    }
    return {
      label: `sentinel ${flags.redisSentinelName}`,
      redisSentinel: {
        name: flags.redisSentinelName,
        sentinels: sentinel,
        ...nodeAuth,
        sentinelUsername: flags.redisSentinelUsername,
        sentinelPassword: flags.redisSentinelPassword,
        tls: flags.redisTls,
      },
    };
  }
  if (flags.redisSentinelName !== undefined && env.SSE_REDIS_SENTINEL_NAME === undefined) {
    return '--redis-sentinel-name needs --redis-sentinel host:port,...';
  }
  if (cluster !== undefined) return { label: 'cluster', redisCluster: { nodes: cluster, ...nodeAuth } };
  if (url !== undefined) return { label: url, redisUrl: url };
  return undefined;
}
