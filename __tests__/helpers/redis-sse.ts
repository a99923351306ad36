// A private redis-server with an sse-hub server on it (the redis broker,
// connected), for suites that test delivery through Redis end to end.
import type { RedisBroker } from '../../src/brokers/redis';
import { createServer, type ServerOptions, type SseServer } from '../../src/cli/server';
import type { HubOptions } from '../../src/core/options';
import { RedisServer } from './redis-server';

export interface RedisSse {
  redis: RedisServer;
  sse: SseServer;
  /** `http://127.0.0.1:<port>` of the server. */
  base: string;
  /** Closes the server, then stops redis-server. */
  stop(): Promise<void>;
}

export async function startRedisSse(hubOptions: HubOptions = {}, options: ServerOptions = {}): Promise<RedisSse> {
  const redis = await RedisServer.start();
  const sse = createServer({ ...options, hubOptions: { broker: 'redis', redisUrl: redis.url, ...hubOptions } });
  const base = `http://127.0.0.1:${(await sse.listen(0)).port}`;
  await (sse.hub.broker as RedisBroker).ready();
  return {
    redis,
    sse,
    base,
    async stop() {
      await sse.close();
      await redis.stop();
    },
  };
}
