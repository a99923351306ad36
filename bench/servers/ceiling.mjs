// The ceiling: what a plain node:http server can do at best with sse-hub's
// design — one Redis subscription per channel, the frame built once per event
// and pre-chunked once, written straight to the corked socket of every stream
// (uncorked together at the end of the tick). No heartbeat, no slow-client
// bound, no bookkeeping: sse-hub's figures are ratios to it.
import { channelsOf, decode, listen, redisSubscriber } from './common.mjs';

const HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
  'X-Accel-Buffering': 'no',
  Connection: 'keep-alive',
};
const PREAMBLE = Buffer.from('retry: 3000\n: ceiling\n\n');
const listeners = new Map();
const corked = [];

function uncorkAll() {
  for (const socket of corked) socket.uncork();
  corked.length = 0;
}

const redis = await redisSubscriber((channel, message) => {
  const set = listeners.get(channel);
  if (set === undefined) return;
  const { event, data } = decode(message);
  const frame = Buffer.from(`event: ${event}\ndata: ${data}\n\n`);
  const chunk = Buffer.concat([Buffer.from(`${frame.length.toString(16)}\r\n`), frame, Buffer.from('\r\n')]);
  for (const socket of set) {
    if (socket.writableCorked === 0) {
      socket.cork();
      if (corked.push(socket) === 1) process.nextTick(uncorkAll);
    }
    socket.write(chunk);
  }
});

listen((req, res) => {
  const channels = channelsOf(req);
  res.writeHead(200, HEADERS);
  res.flushHeaders();
  res.write(PREAMBLE);
  const { socket } = res;
  for (const channel of channels) {
    let set = listeners.get(channel);
    if (set === undefined) listeners.set(channel, (set = new Set()));
    set.add(socket);
    redis.subscribe(channel);
  }
  res.on('close', () => {
    for (const channel of channels) listeners.get(channel)?.delete(socket);
  });
});
