// The replay cap over HTTP: with maxReplays 1 and one replay held open by a
// client that never reads, the next resume gets 200, a jittered `retry:` and
// the end (EventSource retries it), counted in /metrics; once the held replay
// is gone, a resume is served again. A plain stream is never refused.
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

test('a resume past maxReplays: 200, a jittered retry: and the end, counted; served again once a replay ends', async () => {
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

  const refused = await SseReader.open(`${url}/?channels=all`, { 'Last-Event-ID': firstId });
  readers.push(refused);
  await refused.waitForEnd();
  expect(refused.status).toBe(200);
  expect(refused.retry).toBeGreaterThanOrEqual(1000);
  expect(refused.retry).toBeLessThan(2000);
  expect(refused.events).toEqual([]);
  expect(await metric('sse_hub_replays_refused_total')).toBe(1);

  const plain = await SseReader.open(`${url}/?channels=all`);
  readers.push(plain);
  await sse.hub.sendEvent('m', 'live', 'all');
  await plain.waitForEvents(1);
  expect(plain.ended).toBe(false);

  holder.destroy();
  await waitFor(async () => (await metric('sse_hub_replays_active')) === 0, { what: 'the held replay to end' });
  const served = await SseReader.open(`${url}/?channels=all`, { 'Last-Event-ID': firstId });
  readers.push(served);
  await served.waitForEvents(500, 15_000);
  expect(served.ended).toBe(false);
  expect(await metric('sse_hub_replays_refused_total')).toBe(1);
});
