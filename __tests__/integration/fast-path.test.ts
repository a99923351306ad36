// Connection's fast path: on a plain chunked HTTP/1.1 response a
// frame goes to the socket already chunked; HTTP/1.0 and a wrapped res.write
// (compression middleware) take res.write. The bytes must be valid either way.
import http from 'node:http';
import net from 'node:net';
import { createHub } from '../../src/create-hub';
import { WRITES_PER_TURN, type Hub } from '../../src/core/hub';
import { createSubscribeHandler } from '../../src/http/subscribe';
import { fromQuery } from '../../src/http/resolvers';
import { listen, type Listening } from '../helpers/listen';
import { waitFor } from '../helpers/wait-for';

let hub: Hub;
let server: Listening;
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await hub.close();
  await server.close();
});

async function start(wrap?: (res: http.ServerResponse, seen: Buffer[]) => void, seen: Buffer[] = []): Promise<void> {
  hub = createHub({ broker: 'memory' });
  const subscribe = createSubscribeHandler({ hub, channels: fromQuery() });
  server = await listen((req, res) => {
    wrap?.(res, seen);
    void subscribe(req, res);
  });
}

/** A raw client: sends `request`, returns a getter of every byte received. */
async function rawClient(request: string): Promise<() => string> {
  const { port } = server.server.address() as net.AddressInfo;
  const socket = net.connect(port, '127.0.0.1');
  sockets.push(socket);
  let received = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (received += chunk));
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(request);
  await waitFor(() => received.includes('\r\n\r\n'), { what: 'the response head' });
  return () => received;
}

/** Decodes a chunked body; throws on a malformed chunk. */
function dechunk(body: string): string {
  let out = '';
  let rest = body;
  while (rest.length > 0) {
    const eol = rest.indexOf('\r\n');
    if (eol === -1) break; // an incomplete chunk head at the end
    const size = parseInt(rest.slice(0, eol), 16);
    if (!/^[0-9a-f]+$/.test(rest.slice(0, eol)) || Number.isNaN(size))
      throw new Error(`bad chunk head ${rest.slice(0, 20)}`);
    if (rest.length < eol + 2 + size + 2) break;
    if (rest.slice(eol + 2 + size, eol + 4 + size) !== '\r\n') throw new Error('chunk not followed by CRLF');
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 4 + size);
  }
  return out;
}

const GET11 = 'GET /?channels=fast HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n';

test('HTTP/1.1: every frame is one valid chunk, also when events arrive in the same tick', async () => {
  await start();
  const received = await rawClient(GET11);
  await waitFor(() => hub.stats().connections === 1);
  await Promise.all([
    hub.sendEvent('message', 'one', 'fast'),
    hub.sendEvent('update', 'two\nlines', 'fast'),
    hub.sendEvent('message', 'é ünïcode', 'fast'),
  ]);
  const expected =
    'retry: 3000\n: sse-hub\n\n' +
    'event: message\ndata: one\n\n' +
    'event: update\ndata: two\ndata: lines\n\n' +
    'event: message\ndata: é ünïcode\n\n';
  await waitFor(
    () =>
      Buffer.from(dechunk(received().split('\r\n\r\n').slice(1).join('\r\n\r\n')), 'latin1').toString() === expected,
    {
      what: 'three chunked frames',
    },
  );
  expect(received()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  expect(received()).toMatch(/\r\nTransfer-Encoding: chunked\r\n/i);
});

test('the stream still ends with the terminating chunk when the hub closes', async () => {
  await start();
  const received = await rawClient(GET11);
  await waitFor(() => hub.stats().connections === 1);
  await hub.sendEvent('message', 'last', 'fast');
  await hub.close();
  await waitFor(() => received().endsWith('\r\n0\r\n\r\n'), { what: 'the last chunk' });
  expect(dechunk(received().split('\r\n\r\n').slice(1).join('\r\n\r\n'))).toContain('data: last\n\n');
});

test('HTTP/1.0: no chunking, frames go through res.write as they are', async () => {
  await start();
  const received = await rawClient('GET /?channels=fast HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n');
  await waitFor(() => hub.stats().connections === 1);
  await hub.sendEvent('message', 'plain', 'fast');
  await waitFor(() => received().endsWith('event: message\ndata: plain\n\n'), { what: 'the unchunked frame' });
  expect(received()).not.toMatch(/Transfer-Encoding/i);
});

test('a wrapped res.write (as compression middleware does) sees every frame', async () => {
  const seen: Buffer[] = [];
  await start((res, into) => {
    const write = res.write.bind(res) as (chunk: Buffer) => boolean;
    res.write = ((chunk: Buffer) => {
      into.push(Buffer.from(chunk));
      return write(chunk);
    }) as typeof res.write;
  }, seen);
  const received = await rawClient(GET11);
  await waitFor(() => hub.stats().connections === 1);
  await hub.sendEvent('message', 'wrapped', 'fast');
  await waitFor(() => received().includes('data: wrapped\n\n'), { what: 'the frame' });
  expect(Buffer.concat(seen).toString()).toContain('event: message\ndata: wrapped\n\n');
});

test('an event for more streams than one turn writes goes out over several turns: every stream gets every event once, in order, in valid chunks', async () => {
  await start();
  const streams = WRITES_PER_TURN + 50; // each event is split over two turns, the sockets held corked across them
  const clients = await Promise.all(Array.from({ length: streams }, () => rawClient(GET11)));
  await waitFor(() => hub.stats().connections === streams, { what: 'every stream open' });
  const data = Array.from({ length: 20 }, (_, i) => `e${i}`);
  await Promise.all(data.map((d) => hub.sendEvent('message', d, 'fast'))); // all in one tick
  const expected = data.map((d) => `event: message\ndata: ${d}\n\n`).join('');
  const bodies = (): string[] =>
    clients.map((received) => dechunk(received().split('\r\n\r\n').slice(1).join('\r\n\r\n')));
  await waitFor(() => bodies().every((body) => body.endsWith(expected)), { what: 'all 20 events on every stream' });
  for (const body of bodies()) expect(body).toBe(`retry: 3000\n: sse-hub\n\n${expected}`);
  expect(hub.stats().framesWritten).toBe(20 * streams);
});

test('a fast client is never taken for a slow one while the hub holds its socket corked across turns', async () => {
  hub = createHub({ broker: 'memory', maxBufferedBytes: 256 * 1024 });
  const subscribe = createSubscribeHandler({ hub, channels: fromQuery() });
  server = await listen((req, res) => void subscribe(req, res));
  const received = await rawClient(GET11);
  await waitFor(() => hub.stats().connections === 1);
  // 2,000 events of 1 KB in one tick: 8 turns of the fan-out's budget, 2 MB
  // in all, eight times what may wait unsent, and the client reads at once.
  const data = 'x'.repeat(1000);
  await Promise.all(Array.from({ length: 2000 }, (_, i) => hub.sendEvent('message', `${i} ${data}`, 'fast')));
  await waitFor(() => hub.stats().framesWritten === 2000, { what: 'every event written' });
  await waitFor(() => received().includes(`data: 1999 ${data}\n\n`), { what: 'the last event' });
  expect(hub.stats().slowClientsClosed).toBe(0);
  expect(hub.stats().connections).toBe(1);
});
