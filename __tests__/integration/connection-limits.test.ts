// Connection caps (docs/security.md): real clients open more streams than a
// cap allows. Over a cap a stream gets 200 + a jittered `retry:` of at least
// 1 s and ends (a non-200 would make EventSource give up for good); every
// refusal is counted in /metrics; a slot comes back when a stream closes.
// Also the server's own timeouts: a trickled header is cut, a stream is not.
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { EventSource } from 'eventsource';
import express from 'express';
import { createHub, fromQuery, sseMiddleware, type Hub } from '../../src';
import { createServer, DEFAULT_HEADERS_TIMEOUT, type SseServer } from '../../src/cli/server';
import { connectionLimiterOf } from '../../src/http/connection-limits';
import { startRunserver, type RunningServer } from '../helpers/run-cli';
import { SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

const readers: SseReader[] = [];
const sources: EventSource[] = [];
const sockets: net.Socket[] = [];
let sse: SseServer | undefined;
let cli: RunningServer | undefined;

afterEach(async () => {
  for (const r of readers.splice(0)) r.close();
  for (const s of sources.splice(0)) s.close();
  for (const s of sockets.splice(0)) s.destroy();
  await sse?.close();
  sse = undefined;
  await cli?.stop();
  cli = undefined;
});

async function open(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
  const reader = await SseReader.open(url, headers);
  readers.push(reader);
  return reader;
}

async function metrics(base: string): Promise<string> {
  return (await fetch(`${base}/metrics`)).text();
}

const refusedSample = (text: string, reason: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`sse_hub_streams_refused_total{reason="${reason}"} `));
  return line === undefined ? NaN : Number(line.split(' ').pop());
};

/** A refused stream: 200, an event stream, a retry in [base, 2·base), no events, ended. */
async function expectRefused(reader: SseReader, base: number): Promise<void> {
  expect(reader.status).toBe(200);
  expect(reader.headers['content-type']).toMatch(/^text\/event-stream/);
  await reader.waitForEnd();
  expect(reader.retry).toBeGreaterThanOrEqual(Math.max(1000, base));
  expect(reader.retry).toBeLessThan(2 * Math.max(1000, base));
  expect(reader.events).toEqual([]);
}

describe('maxConnections', () => {
  test('regression: past the cap a stream gets 200 + retry: (>= 1 s, jittered) + end, counted in /metrics', async () => {
    sse = createServer({ hubOptions: { broker: 'memory', maxConnections: 5 }, metrics: true });
    const base = `http://127.0.0.1:${(await sse.listen(0)).port}`;
    const admitted = await Promise.all(Array.from({ length: 5 }, () => open(`${base}/?channels=all`)));
    await waitFor(() => sse?.hub.stats().connections === 5, { what: '5 open streams' });
    const refused = await Promise.all(Array.from({ length: 20 }, () => open(`${base}/?channels=all`)));
    for (const reader of refused) await expectRefused(reader, 3000);
    // Jittered: the 20 were not all told the same delay.
    expect(new Set(refused.map((r) => r.retry)).size).toBeGreaterThan(1);
    expect(sse.hub.stats().connections).toBe(5);
    expect(refusedSample(await metrics(base), 'max-connections')).toBe(20);
    // The admin dashboard's refusal log lists them as caps hit.
    expect(sse.hub.refusals.recent().filter((r) => r.kind === 'cap')).toHaveLength(20);
    expect(sse.hub.refusals.recent()[0]?.detail).toMatch(/^GET \/ from .*: max-connections$/);
    expect(refusedSample(await metrics(base), 'max-connections-per-ip')).toBe(0);

    // The admitted ones still stream; a closed one gives its slot back.
    await sse.hub.sendEvent('message', 'hi', 'all');
    for (const reader of admitted) expect(await reader.waitForEvents(1)).toEqual([{ event: 'message', data: 'hi' }]);
    admitted[0]?.close();
    await waitFor(() => sse?.hub.stats().connections === 4, { what: 'a slot back' });
    const again = await open(`${base}/?channels=all`);
    await waitFor(() => sse?.hub.stats().connections === 5, { what: 'the slot taken again' });
    expect(again.ended).toBe(false);
  });

  test('the npm eventsource client keeps retrying over the cap, then opens and receives once a slot frees', async () => {
    sse = createServer({ hubOptions: { broker: 'memory', maxConnections: 1, retry: 1000 }, metrics: true });
    const base = `http://127.0.0.1:${(await sse.listen(0)).port}`;
    const holder = await open(`${base}/?channels=all`);
    await waitFor(() => sse?.hub.stats().connections === 1);
    const source = new EventSource(`${base}/?channels=all`);
    sources.push(source);
    const got: string[] = [];
    source.onmessage = (e) => got.push(e.data as string);
    // Refused twice (each a 200 that ends): it is still trying, not CLOSED.
    await waitFor(async () => refusedSample(await metrics(base), 'max-connections') >= 2, {
      timeout: 10_000,
      what: 'two refusals',
    });
    expect(source.readyState).not.toBe(EventSource.CLOSED);
    expect(got).toEqual([]);
    holder.close();
    // Once it gets the freed slot, an event reaches it.
    await waitFor(
      async () => {
        await sse?.hub.sendEvent('message', 'through', 'all');
        return got.includes('through');
      },
      { interval: 200, timeout: 10_000, what: 'an event on the reopened stream' },
    );
  });
});

describe('maxConnectionsPerIp', () => {
  let hub: Hub;
  let server: http.Server;
  afterEach(async () => {
    for (const r of readers.splice(0)) r.close();
    await hub?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  test("regression: keyed on Express's req.ip (trust proxy): each client address gets its own cap", async () => {
    hub = createHub({ broker: 'memory', maxConnectionsPerIp: 2 });
    const app = express();
    app.set('trust proxy', 'loopback');
    app.get('/sse', sseMiddleware({ hub, channels: fromQuery() }));
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sse?channels=all`;
    const as = (ip: string): Promise<SseReader> => open(url, { 'X-Forwarded-For': ip });

    const first = await Promise.all([as('203.0.113.1'), as('203.0.113.1')]);
    await waitFor(() => hub.stats().connections === 2);
    await expectRefused(await as('203.0.113.1'), 3000);
    // Another client behind the same proxy is not affected.
    const other = await Promise.all([as('203.0.113.2'), as('2001:db8::1')]);
    await waitFor(() => hub.stats().connections === 4);
    // IPv6 by /64: another address of the same /64 shares its cap.
    await as('2001:db8::2');
    const third = await as('2001:db8::3');
    await expectRefused(third, 3000);
    for (const r of [...first, ...other]) expect(r.ended).toBe(false);
  });
});

describe('sseMiddleware caps of its own', () => {
  let hub: Hub;
  let server: http.Server;
  afterEach(async () => {
    for (const r of readers.splice(0)) r.close();
    await hub?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  test('sseMiddleware({ maxConnections, maxConnectionsPerIp }) caps its own endpoint; the hub cap still covers all', async () => {
    hub = createHub({ broker: 'memory', maxConnections: 5 });
    const app = express();
    app.get('/small', sseMiddleware({ hub, channels: fromQuery(), maxConnections: 3, maxConnectionsPerIp: 2 }));
    app.get('/big', sseMiddleware({ hub, channels: fromQuery() }));
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    await Promise.all([open(`${base}/small?channels=a`), open(`${base}/small?channels=a`)]);
    await expectRefused(await open(`${base}/small?channels=a`), 3000); // 2 per address on /small
    await Promise.all([open(`${base}/big?channels=a`), open(`${base}/big?channels=a`), open(`${base}/big?channels=a`)]);
    await waitFor(() => hub.stats().connections === 5);
    await expectRefused(await open(`${base}/big?channels=a`), 3000); // the hub's 5
    const stats = connectionLimiterOf(hub).stats();
    expect(stats.refused).toMatchObject({ 'max-connections-per-ip': 1, 'max-connections': 1 });
    expect(() => sseMiddleware({ hub, maxConnections: -1 })).toThrow(/maxConnections must be a whole number/);
  });
});

describe('sse-runserver flags', () => {
  test('--max-connections-per-ip and SSE_MAX_CONNECTIONS: real clients over each cap are refused and counted', async () => {
    cli = await startRunserver(['--max-connections-per-ip', '2', '--metrics', '--retry', '1000'], {
      SSE_MAX_CONNECTIONS: '3',
    });
    const base = cli.url;
    const two = await Promise.all([open(`${base}/?channels=a`), open(`${base}/?channels=a`)]);
    const third = await open(`${base}/?channels=a`);
    await expectRefused(third, 1000);
    expect(refusedSample(await metrics(base), 'max-connections-per-ip')).toBe(1);
    for (const r of two) expect(r.ended).toBe(false);
  });

  test('SSE_MAX_CONNECTIONS caps the total', async () => {
    cli = await startRunserver(['--metrics'], { SSE_MAX_CONNECTIONS: '1' });
    await open(`${cli.url}/?channels=a`);
    await expectRefused(await open(`${cli.url}/?channels=a`), 3000);
    expect(refusedSample(await metrics(cli.url), 'max-connections')).toBe(1);
  });

  test('--headers-timeout: a trickled request header is answered 408 and closed, and counted', async () => {
    cli = await startRunserver(['--headers-timeout', '1000', '--metrics']);
    const socket = net.connect(cli.port, '127.0.0.1');
    sockets.push(socket);
    let answer = '';
    let closed = false;
    socket.on('data', (c: Buffer) => (answer += c.toString()));
    socket.on('close', () => (closed = true));
    socket.write('GET /?channels=a HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    // Keep trickling a header line: without the timeout the socket would stay.
    const trickle = setInterval(() => socket.writable && socket.write('X-a: b\r\n'), 200);
    try {
      await waitFor(() => closed, { timeout: 5000, what: 'the server to close the trickling socket' });
    } finally {
      clearInterval(trickle);
    }
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    const text = await metrics(cli.url);
    expect(text).toMatch(/^sse_hub_request_timeouts_total 1$/m);
  });
});

describe('server timeouts', () => {
  test('createServer sets headersTimeout 10 s (Node: 60 s) and a requestTimeout no shorter', async () => {
    sse = createServer({ hubOptions: { broker: 'memory' } });
    expect(DEFAULT_HEADERS_TIMEOUT).toBe(10_000);
    expect(sse.server.headersTimeout).toBe(10_000);
    expect(sse.server.requestTimeout).toBeGreaterThanOrEqual(10_000);
  });

  test('requestTimeout never cuts a stream: it outlives a trickled request cut by it, and still receives', async () => {
    sse = createServer({ hubOptions: { broker: 'memory' }, headersTimeout: 1000, requestTimeout: 1000 });
    const { port } = await sse.listen(0);
    const stream = await open(`http://127.0.0.1:${port}/?channels=all`);
    // A request that is still arriving, opened after the stream: once the
    // server has cut it, the stream's request is older than requestTimeout.
    const socket = net.connect(port, '127.0.0.1');
    sockets.push(socket);
    let closed = false;
    socket.on('close', () => (closed = true));
    socket.write(
      'POST /publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{',
    );
    await waitFor(() => closed, { timeout: 5000, what: 'the slow request to be cut' });
    expect(stream.ended).toBe(false);
    await sse.hub.sendEvent('message', 'still streaming', 'all');
    expect(await stream.waitForEvents(1)).toEqual([{ event: 'message', data: 'still streaming' }]);
  });
});
