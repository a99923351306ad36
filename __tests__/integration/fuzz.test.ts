// Seeded fuzzing of every input edge — the Redis payload
// parser, POST /publish and the subscription query (channels, lastEventId) —
// in bounded time. Nothing crashes, every HTTP answer is 2xx, or 4xx with a
// JSON error, and a good event sent afterwards still arrives.
import http from 'node:http';
import { decodePayload } from '../../src/brokers/redis-wire';
import { createServer, type SseServer } from '../../src/cli/server';
import { encodeFrame } from '../../src/core/frame';
import { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed);

/** mulberry32: a small seeded PRNG, so a failing case can be replayed with FUZZ_SEED. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Fuzz {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = rng(seed);
  }
  int(max: number): number {
    return Math.floor(this.next() * max);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
  bytes(max = 64): string {
    let s = '';
    const n = this.int(max);
    for (let i = 0; i < n; i++) {
      const kind = this.int(10);
      s += String.fromCharCode(
        kind < 5 ? 32 + this.int(95) : kind < 7 ? this.int(32) : kind < 9 ? this.int(0xd7ff) : 0xd800 + this.int(0x800),
      );
    }
    return s;
  }
  channel(): string {
    return this.pick([
      () => 'all',
      () => 'a'.repeat(1 + this.int(140)),
      () => this.bytes(20),
      () => ['x', 'y', 'a,b', ' all ', ',,', 'u@x.y', 'ü', '', 'all\n', '%00'][this.int(10)] as string,
    ])();
  }
  json(depth = 0): unknown {
    const kind = this.int(depth > 2 ? 6 : 9);
    switch (kind) {
      case 0:
        return null;
      case 1:
        return this.next() < 0.5;
      case 2:
        return this.pick([0, -1, 1.5, 1e308, -0, Number.MAX_SAFE_INTEGER + 2]);
      case 3:
      case 4:
        return this.bytes(30);
      case 5:
        return this.pick(['message', 'm', 'a\nb', '', 'sse.update', '1-0', '123-456']);
      case 6:
      case 7:
        return Array.from({ length: this.int(5) }, () => this.json(depth + 1));
      default: {
        const object: Record<string, unknown> = {};
        for (let i = this.int(5); i > 0; i--)
          object[this.pick(['channel', 'event', 'data', 'id', this.bytes(8)])] = this.json(depth + 1);
        return object;
      }
    }
  }
  payload(): string {
    return this.pick([
      () => this.bytes(200),
      () => JSON.stringify(this.json()) ?? 'undefined',
      () => JSON.stringify([this.json(), this.json(), ...(this.next() < 0.5 ? [this.json()] : [])]),
      () => JSON.stringify([this.pick(['message', 'm', 'a\rb']), this.bytes(40), this.bytes(10)]),
      () => `[${this.bytes(30)}`,
    ])();
  }
  publishBody(): string {
    return this.pick([
      () => this.bytes(300),
      () => JSON.stringify(this.json()) ?? '',
      () =>
        JSON.stringify({
          channel: this.channel(),
          event: this.json(2),
          data: this.json(1),
          ...(this.next() < 0.3 ? { id: this.json(2) } : {}),
        }),
    ])();
  }
}

function expectJsonError(status: number, text: string): void {
  expect(status >= 200 && status < 500).toBe(true);
  if (status >= 400) {
    const body = JSON.parse(text) as { error?: unknown };
    expect(typeof body.error).toBe('string');
  }
}

test('the Redis payload parser never throws and always yields a frameable event (5000 seeded cases)', () => {
  const fuzz = new Fuzz(SEED);
  for (let i = 0; i < 5000; i++) {
    const raw = fuzz.payload();
    const { event, wellFormed } = decodePayload(raw);
    expect(typeof event.event).toBe('string');
    expect(event.event).not.toMatch(/[\r\n]/);
    expect(typeof event.data).toBe('string');
    if (event.id !== undefined) expect(event.id).not.toMatch(/[\r\n\0]/);
    if (!wellFormed) expect(event).toEqual({ event: 'message', data: raw });
    expect(encodeFrame(event)).toBeInstanceOf(Buffer);
  }
});

describeWithTools(['redis-server'], 'fuzzing the HTTP edges', () => {
  let redis: RedisServer;
  let sse: SseServer;
  let url: string;
  let port: number;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

  beforeAll(async () => {
    redis = await RedisServer.start();
    sse = createServer({
      hubOptions: { broker: 'redis', redisUrl: redis.url, history: { size: 50, ttl: 60 }, maxChannels: 8 },
    });
    port = (await sse.listen(0)).port;
    url = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    agent.destroy();
    await sse.close();
    await redis.stop();
  });

  function request(
    method: string,
    path: string,
    body?: string,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method, path, agent, headers }, (res) => {
        const status = res.statusCode ?? 0;
        if (status === 200 && res.headers['content-type']?.startsWith('text/event-stream')) {
          req.destroy(); // a stream opened: enough
          resolve({ status, text: '' });
          return;
        }
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status, text }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  test('POST /publish: 1500 seeded bodies answer 2xx, or 4xx with a JSON error', async () => {
    const fuzz = new Fuzz(SEED + 1);
    const statuses = new Map<number, number>();
    for (let i = 0; i < 1500; i++) {
      const body = fuzz.publishBody();
      const type = fuzz.pick(['application/json', 'text/plain', 'application/x-www-form-urlencoded']);
      const { status, text } = await request('POST', '/publish', body, { 'Content-Type': type });
      expectJsonError(status, text);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
    // The fuzzer reaches both sides of the validator.
    expect(statuses.get(202)).toBeGreaterThan(10);
    expect(statuses.get(400)).toBeGreaterThan(100);
  }, 45_000);

  test('GET ?channels=&lastEventId=: 1500 seeded queries answer 200 streams, or 4xx with a JSON error', async () => {
    const fuzz = new Fuzz(SEED + 2);
    let streams = 0;
    for (let i = 0; i < 1500; i++) {
      const channels = Array.from({ length: 1 + fuzz.int(10) }, () => fuzz.channel()).join(
        fuzz.pick([',', ', ', ',,']),
      );
      const params = new URLSearchParams({ channels });
      if (fuzz.next() < 0.5)
        params.set('lastEventId', fuzz.pick([fuzz.bytes(20), '0-0', '1-1', '99999999999999999-0', '']));
      const raw = fuzz.next() < 0.2 ? `/?${fuzz.bytes(40).replace(/[^\x21-\x7e]/g, '%')}` : `/?${params}`;
      const headers: Record<string, string> = {};
      if (fuzz.next() < 0.2) headers['Last-Event-ID'] = fuzz.bytes(20).replace(/[^\x20-\x7e]/g, '');
      const { status, text } = await request('GET', raw, undefined, headers);
      expectJsonError(status, text);
      if (status === 200) streams++;
    }
    expect(streams).toBeGreaterThan(50);
    await waitFor(() => sse.hub.stats().connections === 0, { what: 'every fuzzed stream to close' });
  }, 45_000);

  test('afterwards the process is healthy and a good event still arrives', async () => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const reader = await SseReader.open(`${url}/?channels=all`);
    try {
      await waitFor(async () => (await redis.numsub('all')) === 1);
      await redis.publish('all', '{"broken": ');
      const res = await fetch(`${url}/publish`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ channel: 'all', event: 'ok', data: { fine: true } }),
      });
      expect(res.status).toBe(202);
      await waitFor(() => reader.events.some((e) => e.event === 'ok'), { what: 'the good event' });
      // Each exactly once: subscription churn during the fuzzing left one subscription.
      expect(reader.events).toEqual([
        { event: 'message', data: '{"broken": ' },
        { event: 'ok', data: '{"fine":true}', id: expect.any(String) },
      ]);
    } finally {
      reader.close();
    }
  });
});
