// Presence across processes through a real redis-server: two servers (each
// its own broker and record) see each other's connections; a sse-runserver
// killed with SIGKILL drops out within its --presence-ttl; a clean close drops
// out at once; a Redis that lost the records gets them back; publishing does
// not touch presence; a user on two servers is announced once.
import http from 'node:http';
import express from 'express';
import { createServer, type SseServer } from '../../src/cli/server';
import type { RedisBroker } from '../../src/brokers/redis';
import type { Hub } from '../../src/core/hub';
import { createHub, fromSession, sseMiddleware } from '../../src/index';
import { listen, type Listening } from '../helpers/listen';
import { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { startRunserver, type RunningServer } from '../helpers/run-cli';
import { getJson, SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

describeWithTools(['redis-server'], 'presence across processes (Redis)', () => {
  let redis: RedisServer;
  let servers: SseServer[] = [];
  let readers: SseReader[] = [];
  let runserver: RunningServer | undefined;
  let apps: { hub: Hub; listening: Listening }[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => {
    await redis.stop();
  });
  afterEach(async () => {
    for (const reader of readers) reader.close();
    readers = [];
    await Promise.all(servers.map((s) => s.close()));
    servers = [];
    for (const app of apps) {
      await app.hub.close();
      await app.listening.close();
    }
    apps = [];
    await runserver?.stop('SIGKILL');
    runserver = undefined;
    await redis.command('FLUSHALL');
  });

  async function server(hubOptions: Record<string, unknown> = {}): Promise<{ sse: SseServer; base: string }> {
    const sse = createServer({ hubOptions: { broker: 'redis', redisUrl: redis.url, ...hubOptions } });
    servers.push(sse);
    const base = `http://127.0.0.1:${(await sse.listen(0)).port}`;
    await (sse.hub.broker as RedisBroker).ready();
    return { sse, base };
  }
  async function connect(url: string): Promise<SseReader> {
    const reader = await SseReader.open(url);
    readers.push(reader);
    expect(reader.status).toBe(200);
    return reader;
  }

  test("each server sees the other's connections, and the counts fall back when they leave", async () => {
    const a = await server();
    const b = await server();
    await connect(`${a.base}/?channels=lobby,all`);
    const onB = await connect(`${b.base}/?channels=lobby`);
    await connect(`${b.base}/?channels=lobby`);
    await waitFor(async () => (await a.sse.hub.presence('lobby')).connections === 3, { what: '3 on lobby from a' });
    expect(await b.sse.hub.presence('lobby')).toEqual({ connections: 3, users: [] });
    expect(await a.sse.hub.presenceOverview()).toEqual({
      processes: 2,
      channels: [
        { channel: 'lobby', connections: 3, users: [] },
        { channel: 'all', connections: 1, users: [] },
      ],
    });
    onB.close();
    await waitFor(async () => (await a.sse.hub.presence('lobby')).connections === 2, { what: 'the count to drop' });
  });

  test('a process killed with SIGKILL drops out within its --presence-ttl', async () => {
    const a = await server();
    runserver = await startRunserver(['--redis', redis.url, '--presence-ttl', '3']);
    await connect(`${runserver.url}/?channels=crashy`);
    await waitFor(async () => (await a.sse.hub.presence('crashy')).connections === 1, {
      what: "the runserver's connection",
    });
    await runserver.stop('SIGKILL');
    const killed = Date.now();
    await waitFor(async () => (await a.sse.hub.presence('crashy')).connections === 0, {
      timeout: 6000,
      interval: 100,
      what: 'the dead process to drop out',
    });
    // Its record was refreshed at most ~1 s before the kill, and lives 3 s.
    expect(Date.now() - killed).toBeLessThan(3000 + 1000);
    expect((await a.sse.hub.presenceOverview()).processes).toBe(1);
  });

  test('a server that closes cleanly withdraws its record at once', async () => {
    const a = await server();
    const b = await server();
    await connect(`${b.base}/?channels=leaving`);
    await waitFor(async () => (await a.sse.hub.presence('leaving')).connections === 1);
    await b.sse.close();
    // No waiting for the 15 s TTL: the record is gone when close() resolves.
    expect(await a.sse.hub.presence('leaving')).toEqual({ connections: 0, users: [] });
    expect((await a.sse.hub.presenceOverview()).processes).toBe(1);
  });

  test('records lost by Redis (restart, FLUSHALL) are written again', async () => {
    const a = await server({ presenceTtl: 3 });
    const b = await server({ presenceTtl: 3 });
    await connect(`${b.base}/?channels=survivor`);
    await waitFor(async () => (await a.sse.hub.presence('survivor')).connections === 1);
    await redis.command('FLUSHALL');
    expect((await a.sse.hub.presence('survivor')).connections).toBe(0);
    await waitFor(async () => (await a.sse.hub.presence('survivor')).connections === 1, {
      timeout: 4000,
      interval: 100,
      what: 'the record to be rewritten',
    });
  });

  test('publishing events costs presence nothing: no presence command per event', async () => {
    const a = await server();
    await connect(`${a.base}/?channels=busy`);
    // The record is written once the connection is in it; then only the TTL is extended.
    await waitFor(async () => (await redis.command('KEYS', '{sse-hub:presence}:*')).includes('{sse-hub:presence}:'));
    const scripts = async (): Promise<number> => {
      const info = await redis.command('INFO', 'commandstats');
      return Number(/cmdstat_evalsha:calls=(\d+)/.exec(info)?.[1] ?? 0);
    };
    const before = await scripts();
    const started = Date.now();
    for (let i = 0; i < 500; i++) await a.sse.hub.sendEvent('message', i, 'busy');
    const elapsed = Date.now() - started;
    const after = await scripts();
    // Only the TTL extensions that fall into the window, one every third of
    // the TTL (one in a second on an idle machine, more under load): 500
    // events, not 500 scripts.
    const extendEvery = (a.sse.hub.options.presenceTtl * 1000) / 3;
    expect(after - before).toBeLessThanOrEqual(1 + Math.floor(elapsed / extendEvery));
    expect(after - before).toBeLessThan(10);
  });

  test('Redis down: GET /channels is a 503; the dashboard still answers, with what this process knows', async () => {
    const sse = createServer({ admin: true, hubOptions: { broker: 'redis', redisUrl: redis.url } });
    servers.push(sse);
    const base = `http://127.0.0.1:${(await sse.listen(0)).port}`;
    await (sse.hub.broker as RedisBroker).ready();
    await connect(`${base}/?channels=still-here`);
    await redis.stop();
    try {
      await waitFor(() => !sse.hub.isHealthy(), { what: 'the broker to notice' });
      const channels = await getJson(`${base}/channels`);
      expect(channels.status).toBe(503);
      expect((channels.body as { error: string }).error).toMatch(/redis/);
      const stats = await getJson(`${base}/_admin/api/stats`);
      expect(stats.status).toBe(200);
      expect(stats.body).toMatchObject({
        broker: { name: 'redis', healthy: false },
        processes: null,
        presenceError: expect.stringMatching(/redis/),
        channels: [{ channel: 'still-here', connections: 1 }],
      });
    } finally {
      await redis.restart();
    }
  });

  test('presence events: a user on two servers joins once; leave comes when the last tab anywhere closes', async () => {
    const options = { presenceChannels: ['room-*'], presenceDebounce: 1500 };
    // Session mode, as a web app has it: the user comes from req.session.
    const app = async (): Promise<{ hub: Hub; base: string }> => {
      const hub = createHub({ broker: 'redis', redisUrl: redis.url, ...options });
      const web = express();
      web.use((req, _res, next) => {
        Object.assign(req, { session: { username: String(req.query.user) } });
        next();
      });
      web.get('/sse', sseMiddleware({ hub, channels: fromSession({ publicChannels: ['room-1'] }) }));
      const listening = await listen(http.createServer(web));
      apps.push({ hub, listening });
      await (hub.broker as RedisBroker).ready();
      return { hub, base: listening.url };
    };
    const a = await app();
    const b = await app();
    const watcher = await connect(`${a.base}/sse?user=alice&channels=room-1`);
    const presence = (): string[] =>
      watcher.events
        .filter((e) => e.event === 'presence')
        .map((e) => JSON.parse(e.data) as { action: string; user: string })
        .map((e) => `${e.action} ${e.user}`);
    await waitFor(() => presence().length === 1, { what: "alice's join" });
    const onA = await connect(`${a.base}/sse?user=bob&channels=room-1`);
    await connect(`${a.base}/sse?user=bob&channels=room-1`); // a second tab
    await waitFor(() => presence().length === 2, { what: "bob's join" });
    // b sees a's record listing bob: then bob opens a tab on b and closes both on a.
    await waitFor(async () => (await b.hub.presence('room-1')).users.includes('bob'), { what: "a's record" });
    const onB = await connect(`${b.base}/sse?user=bob&channels=room-1`);
    onA.close();
    readers[2]?.close();
    await waitFor(async () => (await a.hub.presence('room-1')).connections === 2, { what: "bob's tabs on a to close" });
    await new Promise((resolve) => setTimeout(resolve, 2500)); // past the debounce: nothing may come
    expect(presence()).toEqual(['join alice', 'join bob']);
    onB.close();
    await waitFor(() => presence().length === 3, { timeout: 6000, what: "bob's leave" });
    expect(JSON.parse(watcher.events.filter((e) => e.event === 'presence')[2]?.data ?? '')).toEqual({
      action: 'leave',
      user: 'bob',
      count: 1,
    });
  });
});
