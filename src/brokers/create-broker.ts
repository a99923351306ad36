// Picks the broker from resolved options: the only file that names both.
import type { Broker } from '../core/broker.js';
import type { ResolvedHubOptions } from '../core/options.js';
import { MemoryBroker } from './memory.js';
import { RedisBroker } from './redis.js';

export function createBroker(options: ResolvedHubOptions): Broker {
  if (typeof options.broker === 'object') return options.broker;
  if (options.broker === 'redis') {
    return new RedisBroker({
      url: options.redisUrl,
      sentinel: options.redisSentinel,
      cluster: options.redisCluster && { ...options.redisCluster, pubsub: options.pubsub },
      channelPrefix: options.channelPrefix,
      waitReplicas: options.redisWaitReplicas,
      historyIds: options.history !== null,
      // Leaves the hub's own sendTimeout the last word, with the clearer message first.
      waitTimeout: Math.max(1, Math.floor(options.sendTimeout * 0.9)),
      logger: options.logger,
      presenceTtl: options.presenceTtl * 1000,
    });
  }
  return new MemoryBroker();
}
