// The replay cap over HTTP: with maxReplays 1 and one replay held open by a
// client that never reads, the next resume waits on its open stream (200,
// nothing replayed yet), counted in /metrics; once the held replay is gone, the
// waiting one is served on the same stream. A plain stream never waits.
import net from 'node:net';
import { createServer, type SseServer } from '../../src/cli/server';
import { SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

let sse: SseServer | undefined;
let url = '';
const readers: SseReader[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const reader of readers) reader.close();
  for (const socket of sockets) socket.destroy();
  await sse?.close();
});

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1]);
}

test('a resume past maxReplays waits on its open stream, counted, and is served once a replay ends', async () => {
  sse = createServer({
    metrics: true,
    hubOptions: {
      broker: 'memory',
      history: { size: 500 },
      maxReplays: 1,
      retry: 1000,
      maxBufferedBytes: 64 * 1024,
      replayStallTimeout: 60_000,
    },
  });
  const { port } = await sse.listen(0, '127.0.0.1');
  url = `http://127.0.0.1:${port}`;
  const padding = 'x'.repeat(8 * 1024);
  let firstId = '';
  for (let i = 0; i < 500; i++) {
    const { id } = await sse.hub.sendEvent('bulk', padding, 'all');
    if (i === 0) firstId = id as string;
  }

  // A resume that never reads: its replay stays paced, holding the one slot.
  const holder = net.connect(port, '127.0.0.1');
  sockets.push(holder);
  holder.on('error', () => undefined);
  await new Promise((resolve) => holder.once('connect', resolve));
  holder.write(`GET /?channels=all HTTP/1.1\r\nHost: x\r\nLast-Event-ID: ${firstId}\r\n\r\n`);
  holder.pause();
  await waitFor(async () => (await metric('sse_hub_replays_active')) === 1, { what: 'the held replay' });

  const waiting = await SseReader.open(`${url}/?channels=all`, { 'Last-Event-ID': firstId });
  readers.push(waiting);
  await waitFor(async () => (await metric('sse_hub_replays_waiting')) === 1, { what: 'the resume to wait' });
  expect(waiting.status).toBe(200);
  expect(waiting.events).toEqual([]);
  expect(waiting.ended).toBe(false);
  expect(await metric('sse_hub_replays_queued_total')).toBe(1);

  const plain = await SseReader.open(`${url}/?channels=all`);
  readers.push(plain);
  await sse.hub.sendEvent('m', 'live', 'all');
  await plain.waitForEvents(1);
  expect(plain.ended).toBe(false);

  holder.destroy();
  // The held replay ends; the waiting resume gets its slot, on the stream it already has.
  await waiting.waitForEvents(500, 15_000);
  expect(waiting.events.at(-1)?.data).toBe('live');
  expect(waiting.ended).toBe(false);
  expect(await metric('sse_hub_replays_waiting')).toBe(0);
  expect(await metric('sse_hub_replays_queued_total')).toBe(1);
});
