// Shared by the bench's comparison servers: the Redis subscription (node-redis,
// the client sse-hub uses), channel bookkeeping and the listening line that
// bench/run.mjs waits for. Each server reads BENCH_REDIS_URL.
import http from 'node:http';
import { createClient } from 'redis';

/** Subscribes lazily, one Redis subscription per channel, as sse-hub does. */
export async function redisSubscriber(onMessage) {
  const client = createClient({ url: process.env.BENCH_REDIS_URL });
  client.on('error', (err) => process.stderr.write(`redis: ${err}\n`));
  await client.connect();
  const subscribed = new Set();
  return {
    subscribe(channel) {
      if (subscribed.has(channel)) return;
      subscribed.add(channel);
      void client.subscribe(channel, (message) => onMessage(channel, message));
    },
  };
}

/** django_sse's ["event", "data"] array, as the hub's decoder reads it. */
export function decode(message) {
  try {
    const value = JSON.parse(message);
    if (Array.isArray(value) && typeof value[0] === 'string') {
      return { event: value[0], data: typeof value[1] === 'string' ? value[1] : JSON.stringify(value[1]) };
    }
  } catch {
    // fall through: delivered raw
  }
  return { event: 'message', data: message };
}

export function channelsOf(req) {
  const query = (req.url ?? '/').split('?')[1] ?? '';
  return (new URLSearchParams(query).get('channels') ?? 'all').split(',').filter(Boolean);
}

export function listen(handler) {
  const server = http.createServer(handler);
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`listening on http://127.0.0.1:${server.address().port}/\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
  return server;
}
