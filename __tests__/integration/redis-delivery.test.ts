// End to end: django_sse / tornado-sse payloads published on
// a real redis-server (with the real redis-cli) reach SSE subscribers of
// sse-runserver's server, byte for byte, and nobody else.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { EventSource } from 'eventsource';
import type { SseServer } from '../../src/cli/server';
import type { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';
import { startRedisSse, type RedisSse } from '../helpers/redis-sse';

const run = promisify(execFile);

describeWithTools(['redis-server', 'redis-cli'], 'Redis wire format end to end', () => {
  let redis: RedisServer;
  let sse: SseServer;
  let base: string;
  let readers: SseReader[] = [];
  let sources: EventSource[] = [];

  let stack: RedisSse;
  beforeAll(async () => {
    stack = await startRedisSse();
    ({ redis, sse, base } = stack);
  });
  afterAll(async () => {
    await stack?.stop();
  });
  afterEach(async () => {
    for (const reader of readers) reader.close();
    for (const source of sources) source.close();
    readers = [];
    sources = [];
    // Every test starts with no subscriptions left over.
    await waitFor(() => sse.hub.stats().channels === 0, { what: 'all channels to be released' });
  });

  async function reader(channels: string): Promise<SseReader> {
    const r = await SseReader.open(`${base}/?channels=${channels}`);
    readers.push(r);
    expect(r.status).toBe(200);
    return r;
  }

  /** An npm `eventsource` client that records the events it is told to listen for. */
  async function eventSource(channels: string, names: string[] = ['message']): Promise<{ data: string[] }> {
    const got = { data: [] as string[] };
    const source = new EventSource(`${base}/?channels=${channels}`);
    sources.push(source);
    for (const name of names) source.addEventListener(name, (e) => got.data.push(e.data));
    await new Promise<void>((resolve, reject) => {
      source.onopen = () => resolve();
      source.onerror = (e) => reject(new Error(`EventSource error: ${e.message}`));
    });
    return got;
  }

  const subscribed = (channel: string, n = 1): Promise<boolean> =>
    waitFor(async () => (await redis.numsub(channel)) === n, { what: `SUBSCRIBE ${channel}` });

  test("the tornado-sse README's redis-cli command reaches every subscriber of `all`, and no one else", async () => {
    const raw = await reader('all');
    const both = await reader('other,all');
    const other = await reader('other');
    const es = await eventSource('all');
    await subscribed('all');
    await subscribed('other');

    // Exactly as the README types it, through a shell.
    const { stdout } = await run('sh', [
      '-c',
      `redis-cli -h 127.0.0.1 -p ${redis.port} PUBLISH all '["message", "{\\"type\\": \\"message\\", \\"user\\": \\"tug\\"}"]'`,
    ]);
    expect(stdout.trim()).toBe('1'); // one subscription for three local listeners

    const data = '{"type": "message", "user": "tug"}';
    await raw.waitForEvents(1);
    await both.waitForEvents(1);
    await waitFor(() => es.data.length === 1, { what: 'the eventsource client' });
    expect(raw.raw).toBe(`retry: 3000\n: sse-hub\n\nevent: message\ndata: ${data}\n\n`);
    expect(both.events).toEqual([{ event: 'message', data }]);
    expect(es.data).toEqual([data]);

    // `other` got nothing: prove it by sending it a marker after the fact.
    await redis.publish('other', '["marker", "m"]');
    await other.waitForEvents(1);
    expect(other.events).toEqual([{ event: 'marker', data: 'm' }]);
  });

  test('a three-element array sets id:', async () => {
    const raw = await reader('all');
    await subscribed('all');
    await redis.publish('all', '["update", "x", "1700000000000-0"]');
    await redis.publish('all', '["update", "y", 7]');
    await raw.waitForEvents(2);
    expect(raw.raw).toContain('id: 1700000000000-0\nevent: update\ndata: x\n\nid: 7\nevent: update\ndata: y\n\n');
    expect(raw.events).toEqual([
      { event: 'update', data: 'x', id: '1700000000000-0' },
      { event: 'update', data: 'y', id: '7' },
    ]);
  });

  test('multi-line data becomes several data: lines that an EventSource client reassembles exactly', async () => {
    const raw = await reader('all');
    const es = await eventSource('all', ['multi']);
    await subscribed('all');
    const data = 'line 1\nline 2\n\n  indented line 4\n';
    await redis.publish('all', JSON.stringify(['multi', data]));
    await raw.waitForEvents(1);
    await waitFor(() => es.data.length === 1, { what: 'the eventsource client' });
    expect(raw.raw).toContain('event: multi\ndata: line 1\ndata: line 2\ndata: \ndata:   indented line 4\ndata: \n\n');
    expect(es.data).toEqual([data]);
    expect(raw.events[0]?.data).toBe(data);
  });

  test('CR and CRLF line breaks split too (EventSource reads them as LF)', async () => {
    const raw = await reader('all');
    await subscribed('all');
    await redis.publish('all', JSON.stringify(['m', 'a\r\nb\rc']));
    await raw.waitForEvents(1);
    expect(raw.raw).toContain('event: m\ndata: a\ndata: b\ndata: c\n\n');
    expect(raw.events[0]?.data).toBe('a\nb\nc');
  });

  test('a non-string data value is JSON-encoded', async () => {
    const raw = await reader('all');
    await subscribed('all');
    await redis.publish('all', '["m", {"type": "message", "n": [1, 2]}]');
    await redis.publish('all', '["m", 42]');
    await raw.waitForEvents(2);
    expect(raw.events.map((e) => e.data)).toEqual(['{"type":"message","n":[1,2]}', '42']);
  });

  test('hub.sendEvent publishes the django_sse array on the channel itself', async () => {
    // What a django_sse-era subscriber (redis-cli SUBSCRIBE) sees.
    const sub = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(redis.port), '--raw', 'SUBSCRIBE', 'all']);
    let out = '';
    sub.stdout.on('data', (c: Buffer) => (out += c.toString()));
    try {
      // redis-cli's own confirmation: a count of subscribers could still include
      // the server's subscription from the test before, not yet dropped.
      await waitFor(() => /^subscribe\nall\n1\n/m.test(out), { what: 'redis-cli to subscribe' });
      await sse.hub.sendEvent('message', { type: 'message', user: 'tug' }, 'all');
      await waitFor(() => out.includes('tug'), { what: 'redis-cli to receive' });
      expect(out).toContain('["message","{\\"type\\":\\"message\\",\\"user\\":\\"tug\\"}"]');
    } finally {
      sub.kill();
    }
  });
});
