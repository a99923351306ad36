// better-sse as its README suggests: one Channel per sse-hub channel, a
// Session per request, channel.broadcast() for every Redis message.
import { createChannel, createSession } from 'better-sse';
import { channelsOf, decode, listen, redisSubscriber } from './common.mjs';

const channels = new Map();

const redis = await redisSubscriber((name, message) => {
  const channel = channels.get(name);
  if (channel === undefined) return;
  const { event, data } = decode(message);
  channel.broadcast(data, event);
});

listen(async (req, res) => {
  const session = await createSession(req, res);
  for (const name of channelsOf(req)) {
    let channel = channels.get(name);
    if (channel === undefined) channels.set(name, (channel = createChannel()));
    channel.register(session);
    redis.subscribe(name);
  }
});
