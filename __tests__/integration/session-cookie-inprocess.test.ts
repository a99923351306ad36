// The in-process session example of docs/sessions.md ("Logging out"): fromSessionCookie() inside the
// app, reading connect-redis's store through the app's own node-redis client,
// re-checks open streams, so logging out ends them (as the CLI does).
import type { AddressInfo } from 'node:net';
import type http from 'node:http';
import express from 'express';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import { createHub, fromSessionCookie, sseMiddleware, type Hub, type SessionCookieResolver } from '../../src/index';
import { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

describeWithTools(['redis-server'], 'fromSessionCookie in the app process', () => {
  let redis: RedisServer;
  let redisClient: ReturnType<typeof createClient>;
  let hub: Hub;
  let channels: SessionCookieResolver;
  let impatient: SessionCookieResolver;
  let server: http.Server;
  let url: string;

  beforeAll(async () => {
    redis = await RedisServer.start();
    redisClient = createClient({ url: redis.url });
    redisClient.on('error', () => undefined);
    await redisClient.connect();
    hub = createHub({ broker: 'memory' });
    const app = express();
    // Mounted before express-session, which would itself wait for the store.
    impatient = fromSessionCookie({ secrets: ['keyboard cat'], store: redisClient, lookupTimeout: 300 });
    app.use('/sse-impatient', sseMiddleware({ hub, channels: impatient }));
    app.use(
      session({
        store: new RedisStore({ client: redisClient }),
        secret: 'keyboard cat',
        resave: false,
        saveUninitialized: false,
      }),
    );
    app.post('/login/:user', (req, res) => {
      (req.session as unknown as Record<string, unknown>).user = { username: req.params.user };
      res.json({ ok: true });
    });
    app.post('/logout', (req, res, next) => req.session.destroy((err) => (err ? next(err) : res.json({ ok: true }))));
    // As docs/sessions.md shows it, with a short re-check so the test runs fast.
    channels = fromSessionCookie({ secrets: ['keyboard cat'], store: redisClient, recheck: 200 });
    app.use('/sse', sseMiddleware({ hub, channels }));
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    channels?.close();
    impatient?.close();
    await hub?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await redisClient?.close();
    await redis?.stop();
  });

  test('a logged-in user streams [user, all]; logging out ends the open stream and refuses the next', async () => {
    const login = await fetch(`${url}/login/bob`, { method: 'POST' });
    const cookie = (login.headers.get('set-cookie') as string).split(';')[0] as string;
    const reader = await SseReader.open(`${url}/sse/`, { cookie });
    expect(reader.status).toBe(200);
    await waitFor(() => hub.stats().connections === 1, { what: "bob's stream" });
    for (const channel of ['admin', 'bob', 'all']) await hub.sendEvent('message', channel, channel);
    expect((await reader.waitForEvents(2)).map((e) => e.data)).toEqual(['bob', 'all']);

    await fetch(`${url}/logout`, { method: 'POST', headers: { cookie } });
    await reader.waitForEnd(3000);
    const again = await SseReader.open(`${url}/sse/`, { cookie });
    expect(again.status).toBe(403);
    again.close();
  });

  test('regression: a slow session store (Redis paused past lookupTimeout) → 200 + retry: + end, not 503', async () => {
    const login = await fetch(`${url}/login/carol`, { method: 'POST' });
    const cookie = (login.headers.get('set-cookie') as string).split(';')[0] as string;
    const ok = await SseReader.open(`${url}/sse-impatient/`, { cookie });
    expect(ok.status).toBe(200);
    ok.close();
    // CLIENT PAUSE: Redis holds every client's commands for 1.5 s — slow, not down.
    expect(await redis.command('CLIENT', 'PAUSE', '1500')).toMatch(/^\+OK/);
    const refused = await SseReader.open(`${url}/sse-impatient/`, { cookie });
    expect(refused.status).toBe(200);
    expect(refused.headers['content-type']).toMatch(/^text\/event-stream/);
    await refused.waitForEnd();
    expect(refused.retry).toBeGreaterThanOrEqual(3000); // the hub's retry (3000), jittered
    expect(refused.retry).toBeLessThan(6000);
    expect(refused.events).toEqual([]);
  });
});
