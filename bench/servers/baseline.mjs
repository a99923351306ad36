// The bare-Node baseline: the same Redis subscription as sse-hub, the frame
// built once per event, and a plain res.write to every response. Nothing
// else: no heartbeat, no slow-client bound. sse-hub's figures are ratios to it.
import { channelsOf, decode, listen, redisSubscriber } from './common.mjs';

const HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
  'X-Accel-Buffering': 'no',
  Connection: 'keep-alive',
};
const PREAMBLE = Buffer.from('retry: 3000\n: baseline\n\n');
const listeners = new Map();

const redis = await redisSubscriber((channel, message) => {
  const set = listeners.get(channel);
  if (set === undefined) return;
  const { event, data } = decode(message);
  const frame = Buffer.from(`event: ${event}\ndata: ${data}\n\n`);
  for (const res of set) res.write(frame);
});

listen((req, res) => {
  const channels = channelsOf(req);
  res.writeHead(200, HEADERS);
  res.flushHeaders();
  res.write(PREAMBLE);
  for (const channel of channels) {
    let set = listeners.get(channel);
    if (set === undefined) listeners.set(channel, (set = new Set()));
    set.add(res);
    redis.subscribe(channel);
  }
  res.on('close', () => {
    for (const channel of channels) listeners.get(channel)?.delete(res);
  });
});
