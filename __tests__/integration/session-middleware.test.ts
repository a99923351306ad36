// Session mode in the library: sseMiddleware() with fromSession() behind
// a real express-session. The query cannot widen the session; publicChannels
// and fromSession's `authorize` hook add named channels a user asks for;
// once they are set, anything else asked for is refused with 403 (without
// them the query is ignored); sseMiddleware's own authorize stays a veto and
// never adds. On Express 5 and 4; refusals through supertest, streams on
// real sockets.
import type { AddressInfo } from 'node:net';
import type http from 'node:http';
import session from 'express-session';
import request from 'supertest';
import { createHub, fromSession, sseMiddleware, type Hub } from '../../src/index';
import { EXPRESSES, type ExpressFactory } from '../helpers/expresses';
import { SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

describe.each(EXPRESSES)('%s: sseMiddleware + fromSession, what the query may add', (_name, express) => {
  let hub: Hub;
  let app: ReturnType<ExpressFactory>;
  let server: http.Server;
  let url: string;
  const readers: SseReader[] = [];

  beforeAll(async () => {
    hub = createHub({ broker: 'memory' });
    app = express();
    app.use(session({ secret: 'test', resave: false, saveUninitialized: false }));
    app.post('/login/:user', (req, res) => {
      (req.session as unknown as Record<string, unknown>).user = { username: req.params.user };
      res.json({ ok: true });
    });
    const channels = fromSession({
      publicChannels: ['news'],
      // A team channel for its members: the hook sees the session's user.
      authorize: (_req, channel, user) => channel === `team-${user}`,
    });
    app.use('/sse', sseMiddleware({ hub, channels }));
    // sseMiddleware's authorize is a veto on every channel and cannot add one.
    app.use('/veto', sseMiddleware({ hub, channels: fromSession(), authorize: (_req, ch) => ch !== 'nothing' }));
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(() => {
    for (const reader of readers.splice(0)) reader.close();
  });

  afterAll(async () => {
    await hub.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  async function login(user: string): Promise<string> {
    const res = await request(app).post(`/login/${user}`).expect(200);
    return (res.get('Set-Cookie')?.[0] as string).split(';')[0] as string;
  }

  async function open(path: string, cookie: string): Promise<SseReader> {
    const reader = await SseReader.open(url + path, { cookie });
    readers.push(reader);
    return reader;
  }

  async function refused(path: string, cookie: string, status: number, pattern: RegExp): Promise<void> {
    const res = await request(app)
      .get(path)
      .set('Cookie', cookie)
      .expect('Content-Type', /application\/json/);
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ error: expect.stringMatching(pattern) });
  }

  test("without public channels the query is ignored: ?channels=admin as bob gets bob's channels only", async () => {
    const bob = await login('bob');
    const ignored = await open('/veto/?channels=admin', bob);
    expect(ignored.status).toBe(200);
    await waitFor(() => hub.stats().connections === 1, { what: "bob's stream" });
    for (const channel of ['admin', 'bob', 'all']) await hub.sendEvent('message', channel, channel);
    expect((await ignored.waitForEvents(2)).map((e) => e.data)).toEqual(['bob', 'all']);
  });

  test('with public channels, ?channels=admin as bob is refused; bob keeps only his own channels', async () => {
    const bob = await login('bob');
    await refused('/sse/?channels=admin', bob, 403, /not allowed to listen on channel "admin"/);
    await refused('/sse/?channels=team-admin', bob, 403, /channel "team-admin"/);

    const plain = await open('/sse/', bob);
    expect(plain.status).toBe(200);
    await waitFor(() => hub.stats().connections === 1, { what: "bob's stream" });
    for (const channel of ['admin', 'news', 'team-bob', 'bob']) await hub.sendEvent('message', channel, channel);
    expect((await plain.waitForEvents(1)).map((e) => e.data)).toEqual(['bob']);
  });

  test('public channels and channels the authorize hook accepts are added to the session channels', async () => {
    const bob = await login('bob');
    const reader = await open('/sse/?channels=news,team-bob,all', bob);
    expect(reader.status).toBe(200);
    await waitFor(() => hub.stats().connections === 1, { what: "bob's stream" });
    for (const channel of ['admin', 'news', 'team-bob', 'bob', 'all']) await hub.sendEvent('message', channel, channel);
    expect((await reader.waitForEvents(4)).map((e) => e.data)).toEqual(['news', 'team-bob', 'bob', 'all']);
  });

  test('a bad public channel name is refused when the resolver is created', () => {
    expect(() => fromSession({ publicChannels: ['not a channel'] })).toThrow(TypeError);
  });
});
