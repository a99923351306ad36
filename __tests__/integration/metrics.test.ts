// GET /metrics: Prometheus text read from the hub's and the broker's
// counters at scrape time; off unless asked for.
import http from 'node:http';
import { createServer, type SseServer } from '../../src/cli/server';
import { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

function get(url: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
      })
      .on('error', reject);
  });
}

/** The value of one sample line, e.g. `sse_hub_connections 2`. */
function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

async function metricsOf(url: string): Promise<string> {
  const res = await get(`${url}/metrics`);
  expect(res.status).toBe(200);
  return res.body;
}

const readers: SseReader[] = [];
let sse: SseServer | undefined;

afterEach(async () => {
  for (const reader of readers.splice(0)) reader.close();
  await sse?.close();
  sse = undefined;
});

async function start(options: Parameters<typeof createServer>[0]): Promise<string> {
  sse = createServer(options);
  const { port } = await sse.listen(0);
  return `http://127.0.0.1:${port}`;
}

async function open(url: string): Promise<SseReader> {
  const reader = await SseReader.open(url);
  readers.push(reader);
  return reader;
}

describe('GET /metrics with the memory broker', () => {
  test('is off by default: 404 like any unknown path', async () => {
    const url = await start({ hubOptions: { broker: 'memory' } });
    expect((await get(`${url}/metrics`)).status).toBe(404);
  });

  test('reports connections, channels, events received and frames written', async () => {
    const url = await start({ hubOptions: { broker: 'memory' }, metrics: true });
    const a = await open(`${url}/?channels=all,alice`);
    const b = await open(`${url}/?channels=all`);
    await waitFor(() => sse?.hub.stats().connections === 2, { what: 'two connections' });

    const before = await metricsOf(url);
    expect(sample(before, 'sse_hub_connections')).toBe(2);
    expect(sample(before, 'sse_hub_channels')).toBe(2);
    expect(sample(before, 'sse_hub_events_received_total')).toBe(0);
    expect(sample(before, 'sse_hub_broker_up')).toBe(1);

    await sse?.hub.sendEvent('message', 'to everyone', 'all');
    await sse?.hub.sendEvent('message', 'to alice', 'alice');
    await a.waitForEvents(2);
    await b.waitForEvents(1);

    const after = await metricsOf(url);
    expect(sample(after, 'sse_hub_events_received_total')).toBe(2);
    expect(sample(after, 'sse_hub_frames_written_total')).toBe(3);
    expect(sample(after, 'sse_hub_slow_clients_closed_total')).toBe(0);
    expect(sample(after, 'sse_hub_bad_payloads_total')).toBe(0);
    expect(after).toContain('# TYPE sse_hub_frames_written_total counter');
    expect(after).toContain('# TYPE sse_hub_connections gauge');

    a.close();
    b.close();
    await waitFor(() => sse?.hub.stats().connections === 0, { what: 'the streams to close' });
    const closed = await metricsOf(url);
    expect(sample(closed, 'sse_hub_connections')).toBe(0);
    expect(sample(closed, 'sse_hub_channels')).toBe(0);
  });

  test('answers in the Prometheus text format and refuses other methods', async () => {
    const url = await start({ hubOptions: { broker: 'memory' }, metrics: true });
    const res = await get(`${url}/metrics`);
    expect(res.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const post = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${url}/metrics`, { method: 'POST' }, (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(post).toBe(405);
  });
});

describeWithTools(['redis-server'], 'GET /metrics with the redis broker', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => {
    await redis.stop();
  });

  test('regression: a 200,000-deep JSON array published on Redis is delivered raw and counted as a bad payload', async () => {
    const url = await start({ hubOptions: { broker: 'redis', redisUrl: redis.url }, metrics: true });
    const reader = await open(`${url}/?channels=deep`);
    await waitFor(async () => (await redis.numsub('deep')) === 1, { what: 'the subscription' });
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    await redis.publish('deep', `["message", ${deep}]`);
    await redis.publish('deep', deep);
    await redis.publish('deep', '["message", "after"]');
    const events = await reader.waitForEvents(3);
    expect(events.map((e) => [e.event, e.data.length])).toEqual([
      ['message', deep.length + 13],
      ['message', deep.length],
      ['message', 5],
    ]);
    expect(events[0]?.data).toBe(`["message", ${deep}]`);
    expect(sample(await metricsOf(url), 'sse_hub_bad_payloads_total')).toBe(2);
  });

  test('counts bad payloads and broker reconnects', async () => {
    const url = await start({ hubOptions: { broker: 'redis', redisUrl: redis.url }, metrics: true });
    const reader = await open(`${url}/?channels=metrics-test`);
    await waitFor(async () => (await redis.numsub('metrics-test')) === 1, { what: 'the subscription' });

    await redis.publish('metrics-test', 'not a django_sse array');
    await redis.publish('metrics-test', '["message", "fine"]');
    await reader.waitForEvents(2);
    let text = await metricsOf(url);
    expect(sample(text, 'sse_hub_bad_payloads_total')).toBe(1);
    expect(sample(text, 'sse_hub_events_received_total')).toBe(2);
    expect(sample(text, 'sse_hub_broker_reconnects_total')).toBe(0);

    await redis.stop();
    await waitFor(async () => sample(await metricsOf(url), 'sse_hub_broker_up') === 0, { what: 'broker_up 0' });
    await redis.restart();
    await waitFor(async () => sample(await metricsOf(url), 'sse_hub_broker_up') === 1, {
      timeout: 10_000,
      what: 'broker_up 1 again',
    });
    text = await metricsOf(url);
    expect(sample(text, 'sse_hub_broker_reconnects_total')).toBe(1);
  });
});
