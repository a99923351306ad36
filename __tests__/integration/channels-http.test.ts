// GET /channels and GET /channels/<name> on the standalone server: JSON with
// counts and users, protected like /publish (loopback only without a token,
// Bearer with --admin-token, or --publish-token when no admin token is set),
// 400 for a bad name, and refusals land in the dashboard's log.
import { createServer, type ServerOptions, type SseServer } from '../../src/cli/server';
import type { ChannelResolver } from '../../src/http/resolvers';
import { queryOf } from '../../src/http/resolvers';
import { getJson, SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

let sse: SseServer | undefined;
let readers: SseReader[] = [];

async function start(options: ServerOptions = {}): Promise<string> {
  sse = createServer({ hubOptions: { broker: 'memory' }, ...options });
  return `http://127.0.0.1:${(await sse.listen(0)).port}`;
}
async function connect(url: string): Promise<SseReader> {
  const reader = await SseReader.open(url);
  readers.push(reader);
  expect(reader.status).toBe(200);
  return reader;
}

afterEach(async () => {
  for (const reader of readers) reader.close();
  readers = [];
  await sse?.close();
  sse = undefined;
});

test('lists the channels with open connections, busiest first, and one channel by name', async () => {
  const base = await start();
  await connect(`${base}/?channels=lobby,all`);
  await connect(`${base}/?channels=lobby`);
  expect(await getJson(`${base}/channels`)).toMatchObject({
    status: 200,
    body: {
      processes: 1,
      subscriptions: 3,
      channels: [
        { channel: 'lobby', connections: 2, users: [] },
        { channel: 'all', connections: 1, users: [] },
      ],
    },
  });
  expect((await getJson(`${base}/channels/lobby`)).body).toEqual({ channel: 'lobby', connections: 2, users: [] });
  expect((await getJson(`${base}/channels/empty`)).body).toEqual({ channel: 'empty', connections: 0, users: [] });
  readers[0]?.close();
  await waitFor(
    async () => ((await getJson(`${base}/channels/all`)).body as { connections: number }).connections === 0,
  );
});

test('users come from the channel resolver (session mode): distinct names per channel', async () => {
  const bySession: ChannelResolver = () => ['team'];
  bySession.userOf = (req) => queryOf(req).get('user') ?? undefined;
  const base = await start({ channels: bySession });
  await connect(`${base}/?user=bob`);
  await connect(`${base}/?user=bob`);
  await connect(`${base}/?user=alice`);
  expect((await getJson(`${base}/channels/team`)).body).toEqual({
    channel: 'team',
    connections: 3,
    users: ['alice', 'bob'],
  });
});

test('a bad channel name is a 400 JSON error; other methods are 405', async () => {
  const base = await start();
  const bad = await getJson(`${base}/channels/${encodeURIComponent('no spaces')}`);
  expect(bad.status).toBe(400);
  expect((bad.body as { error: string }).error).toMatch(/not a valid channel name/);
  expect((await getJson(`${base}/channels/%E0%A4%A`)).status).toBe(400);
  const post = await fetch(`${base}/channels`, { method: 'POST' });
  expect(post.status).toBe(405);
  expect(await post.json()).toEqual({ error: expect.stringMatching(/use GET/) });
});

test('without a token: loopback only, and never through a proxy', async () => {
  const base = await start();
  const forwarded = await getJson(`${base}/channels`, { 'X-Forwarded-For': '203.0.113.9' });
  expect(forwarded.status).toBe(403);
  expect((forwarded.body as { error: string }).error).toMatch(/loopback only.*--admin-token/);
  // The refusal is in the dashboard's log.
  expect(sse?.hub.refusals.recent()[0]).toMatchObject({
    kind: 'forbidden',
    detail: expect.stringMatching(/GET \/channels/),
  });
});

test('--admin-token: Bearer required; the publish token does not open it', async () => {
  const base = await start({ adminToken: 'admin-secret', publishToken: 'publish-secret' });
  expect((await getJson(`${base}/channels`)).status).toBe(401);
  expect((await getJson(`${base}/channels`, { Authorization: 'Bearer publish-secret' })).status).toBe(401);
  expect((await getJson(`${base}/channels`, { Authorization: 'Bearer admin-secret' })).status).toBe(200);
  expect(sse?.hub.refusals.totals()).toEqual({ unauthorized: 2 });
});

test('with only --publish-token, that token opens /channels', async () => {
  const base = await start({ publishToken: 'publish-secret' });
  expect((await getJson(`${base}/channels`)).status).toBe(401);
  expect((await getJson(`${base}/channels/x`, { Authorization: 'Bearer publish-secret' })).status).toBe(200);
});
