// sseMiddleware on Express 5 and Express 4 (the `express4` alias), the two
// the peer dependency promises: fromQuery, the default session mode with
// express-session + connect-redis on a real redis-server, the authorize veto;
// and as a plain node:http handler. JSON answers go through supertest; streams
// use real sockets (an eventsource client, the raw SseReader).
import { readFileSync } from 'node:fs';
import http from 'node:http';
import session from 'express-session';
import request from 'supertest';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import { EventSource } from 'eventsource';
import { silentLogger } from '../../src/core/logger';
import { configure, createHub, fromQuery, sseMiddleware, type Hub } from '../../src/index';
import { EXPRESSES, type ExpressFactory } from '../helpers/expresses';
import { listen, type Listening } from '../helpers/listen';
import { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { getJson, SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

let hub: Hub;
let servers: Listening[] = [];
let readers: SseReader[] = [];
let sources: EventSource[] = [];

beforeEach(() => {
  hub = createHub({ broker: 'memory' });
});
afterEach(async () => {
  for (const r of readers) r.close();
  for (const s of sources) s.close();
  readers = [];
  sources = [];
  await hub.close();
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function serve(handler: http.RequestListener): Promise<string> {
  const listening = await listen(handler);
  servers.push(listening);
  return listening.url;
}

async function open(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
  const reader = await SseReader.open(url, headers);
  readers.push(reader);
  return reader;
}

/** Waits until the hub has `n` open streams, so a following sendEvent reaches them. */
const streams = (n: number): Promise<boolean> => waitFor(() => hub.stats().connections === n, { what: `${n} streams` });

describe.each(EXPRESSES)('%s', (_name, express, major) => {
  test(`the suite really runs Express ${major}`, () => {
    const pkg = major === 5 ? 'express/package.json' : 'express4/package.json';
    expect((JSON.parse(readFileSync(require.resolve(pkg), 'utf8')) as { version: string }).version).toMatch(
      new RegExp(`^${major}\\.`),
    );
  });

  // A newcomer's first try: the default session mode in an app without
  // express-session must say what is missing, not "not logged in".
  test('sseMiddleware() without express-session answers 500 naming the fix, and warns once', async () => {
    const warnings: string[] = [];
    await hub.close();
    hub = createHub({ broker: 'memory', logger: { ...silentLogger, warn: (message) => warnings.push(message) } });
    configure(hub);
    const app = express();
    app.use('/sse', sseMiddleware());
    for (let i = 0; i < 3; i++) {
      const res = await request(app)
        .get('/sse')
        .expect('Content-Type', /application\/json/);
      expect(res.status).toBe(500);
      expect(res.body.error).toMatch(/mount express-session before sseMiddleware\(\)/);
      expect(res.body.error).toMatch(/channels: fromQuery\(\)/);
      expect(res.body.error).not.toMatch(/not logged in/);
    }
    expect(warnings).toEqual([expect.stringMatching(/mount express-session before sseMiddleware\(\)/)]);
    expect(hub.stats().connections).toBe(0);
  });

  describe("app.use('/sse', sseMiddleware({ channels: fromQuery() }))", () => {
    test('streams the channels named in the query, to an eventsource client', async () => {
      const app = express();
      app.use('/sse', sseMiddleware({ hub, channels: fromQuery() }));
      app.get('/', (_req, res) => {
        res.send('the app');
      });
      const base = await serve(app);

      const got: string[] = [];
      const source = new EventSource(`${base}/sse?channels=all,news`);
      sources.push(source);
      source.addEventListener('message', (e) => got.push(e.data));
      await new Promise<void>((resolve) => (source.onopen = () => resolve()));
      const raw = await open(`${base}/sse/?channels=news`);
      expect(raw.status).toBe(200);
      expect(raw.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      await streams(2);

      await hub.sendEvent('message', { type: 'message', user: 'tug' }, 'all');
      await hub.sendEvent('message', 'news item', 'news');
      await hub.sendEvent('message', 'elsewhere', 'sports');
      await waitFor(() => got.length === 2, { what: 'two events' });
      await raw.waitForEvents(1);
      expect(got).toEqual(['{"type":"message","user":"tug"}', 'news item']);
      expect(raw.events).toEqual([{ event: 'message', data: 'news item' }]);
      // The rest of the app is untouched.
      expect(await (await fetch(`${base}/`)).text()).toBe('the app');
    });

    test('bad channels are answered 400 JSON by the middleware, not Express', async () => {
      const app = express();
      app.use('/sse', sseMiddleware({ hub, channels: fromQuery() }));
      const res = await request(app)
        .get('/sse?channels=../x')
        .expect('Content-Type', /application\/json/);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error: expect.stringMatching(/not a valid channel name/) });
    });

    test('authorize vetoes a channel with 403 JSON, in any mode', async () => {
      const app = express();
      const asked: string[] = [];
      app.use(
        '/sse',
        sseMiddleware({
          hub,
          channels: fromQuery(),
          authorize: async (_req, channel) => {
            asked.push(channel);
            return channel !== 'admin';
          },
        }),
      );
      const refused = await request(app).get('/sse?channels=all,admin');
      expect(refused.status).toBe(403);
      expect(refused.body).toEqual({ error: 'not allowed to listen on channel "admin"' });
      expect(asked.sort()).toEqual(['admin', 'all']);
      expect(hub.stats()).toMatchObject({ connections: 0, channels: 0 });
      const allowed = await open(`${await serve(app)}/sse?channels=all`);
      expect(allowed.status).toBe(200);
    });
  });

  describeWithTools(['redis-server'], 'default sseMiddleware(): express-session + connect-redis', () => {
    let redis: RedisServer;
    let client: ReturnType<typeof createClient>;
    let app: ReturnType<ExpressFactory>;
    let base: string;

    beforeAll(async () => {
      redis = await RedisServer.start();
      client = createClient({ url: redis.url });
      client.on('error', () => undefined);
      await client.connect();
    });
    afterAll(async () => {
      await client.close();
      await redis.stop();
    });

    beforeEach(async () => {
      configure(hub); // sseMiddleware() without `hub` uses the default hub
      app = express();
      app.use(
        session({
          store: new RedisStore({ client, prefix: 'sess:' }),
          secret: 'test secret',
          resave: false,
          saveUninitialized: false,
        }),
      );
      app.post('/login/:name', (req, res) => {
        (req.session as unknown as { user: { username: string } }).user = { username: req.params.name };
        res.json({ ok: true });
      });
      app.use('/sse', sseMiddleware());
      base = await serve(app);
    });

    async function login(name: string): Promise<string> {
      const res = await request(app)
        .post(`/login/${encodeURIComponent(name)}`)
        .expect(200);
      const cookie = res.get('Set-Cookie')?.[0];
      expect(cookie).toMatch(/^connect\.sid=/);
      return (cookie as string).split(';')[0] as string;
    }

    test("subscribes the session's user to [username, 'all'] (session kept in Redis)", async () => {
      const cookie = await login('tug');
      expect(await client.keys('sess:*')).toHaveLength(1);

      // npm eventsource sends headers only through its fetch option.
      const got: string[] = [];
      const source = new EventSource(`${base}/sse`, {
        fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, Cookie: cookie } }),
      });
      sources.push(source);
      source.addEventListener('message', (e) => got.push(e.data));
      await new Promise<void>((resolve, reject) => {
        source.onopen = () => resolve();
        source.onerror = (e) => reject(new Error(e.message));
      });
      await streams(1);
      expect(hub.stats().channels).toBe(2);

      await hub.sendEvent('message', 'to tug', 'tug');
      await hub.sendEvent('message', 'to bob', 'bob');
      await hub.sendEvent('message', 'to all', 'all');
      await waitFor(() => got.length === 2, { what: 'two events' });
      expect(got).toEqual(['to tug', 'to all']);
    });

    test('403 JSON for a user whose name is not a channel name', async () => {
      const cookie = await login('bob smith');
      const res = await request(app).get('/sse').set('Cookie', cookie);
      expect(res.status).toBe(403);
      expect(res.body).toEqual({ error: expect.stringMatching(/user name is not a valid channel name/) });
      expect(hub.stats().connections).toBe(0);
    });

    test('403 JSON without a logged-in user', async () => {
      const res = await request(app).get('/sse?channels=all');
      expect(res.status).toBe(403);
      expect(res.body).toEqual({ error: 'not logged in: this stream needs an authenticated session' });
      expect(hub.stats().connections).toBe(0);
    });

    test('?channels= cannot add channels to a session stream', async () => {
      const cookie = await login('tug');
      // Naming the session's own channels changes nothing.
      const own = await open(`${base}/sse?channels=all,tug`, { Cookie: cookie });
      expect(own.status).toBe(200);
      await streams(1);
      expect(hub.stats().channels).toBe(2);

      // Naming another channel never makes the stream listen on it: without
      // public channels or authorize, the query is ignored.
      const other = await open(`${base}/sse?channels=secret`, { Cookie: cookie });
      expect(other.status).toBe(200);
      await streams(2);
      await hub.sendEvent('message', 'secret stuff', 'secret');
      await hub.sendEvent('message', 'public', 'all');
      await own.waitForEvents(1);
      await other.waitForEvents(1);
      expect(own.events).toEqual([{ event: 'message', data: 'public' }]);
      expect(other.events).toEqual([{ event: 'message', data: 'public' }]);
      expect(hub.stats().channels).toBe(2);
    });
  });
});

test('works as a plain http.createServer handler', async () => {
  const base = await serve(sseMiddleware({ hub, channels: fromQuery() }));
  const reader = await open(`${base}/?channels=all`);
  expect(reader.status).toBe(200);
  expect(reader.headers).toMatchObject({
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    'x-accel-buffering': 'no',
    connection: 'keep-alive',
  });
  await streams(1);
  await hub.sendEvent('update', 'plain', 'all');
  await reader.waitForEvents(1);
  expect(reader.raw).toBe('retry: 3000\n: sse-hub\n\nevent: update\ndata: plain\n\n');
  expect(await getJson(`${base}/?channels=a%20b`)).toMatchObject({ status: 400 });
});
