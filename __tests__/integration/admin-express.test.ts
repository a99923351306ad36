// sseAdmin() mounted in a real Express app: the page is served under any
// mount, its data only to requests `authorize` accepts; the publish API takes
// JSON only (so a cross-site form cannot post to it); the tail is a real hub
// stream that the channel list does not count.
import http from 'node:http';
import express from 'express';
import { createHub, fromQuery, sseAdmin, sseMiddleware, type Hub, type SseAdminHandler } from '../../src/index';
import { listen, type Listening } from '../helpers/listen';
import { getJson, SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

let hub: Hub;
let admin: SseAdminHandler;
let server: Listening;
let readers: SseReader[] = [];

async function start(authorize?: (req: http.IncomingMessage) => boolean): Promise<string> {
  hub = createHub({ broker: 'memory' });
  admin = sseAdmin({ hub, authorize });
  const app = express();
  app.use('/_sse-admin', admin);
  app.get('/events', sseMiddleware({ hub, channels: fromQuery() }));
  server = await listen(http.createServer(app));
  return server.url;
}
async function connect(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
  const reader = await SseReader.open(url, headers);
  readers.push(reader);
  return reader;
}

afterEach(async () => {
  for (const reader of readers) reader.close();
  readers = [];
  admin.close();
  await hub.close();
  await server.close();
});

const ADMIN = { 'X-Admin': 'yes' };
const isAdmin = (req: http.IncomingMessage): boolean => req.headers['x-admin'] === 'yes';

test('the mount redirects to its slash and serves the page with a strict CSP, without any data', async () => {
  const base = await start(isAdmin);
  const bare = await fetch(`${base}/_sse-admin`, { redirect: 'manual' });
  expect(bare.status).toBe(308);
  expect(bare.headers.get('location')).toBe('/_sse-admin/');
  await connect(`${base}/events?channels=secret-channel`);
  const page = await fetch(`${base}/_sse-admin/`);
  expect(page.status).toBe(200);
  expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'; script-src 'self'/);
  expect(page.headers.get('x-frame-options')).toBe('DENY');
  const html = await page.text();
  expect(html).toMatch(/id="login"/);
  expect(html).not.toMatch(/secret-channel/);
  expect((await fetch(`${base}/_sse-admin/admin.js`)).headers.get('content-type')).toMatch(/javascript/);
});

test('its data goes only to requests authorize accepts', async () => {
  const base = await start(isAdmin);
  await connect(`${base}/events?channels=orders`);
  const refused = await getJson(`${base}/_sse-admin/api/stats`);
  expect(refused.status).toBe(403);
  expect(JSON.stringify(refused.body)).not.toMatch(/orders/);
  expect((await getJson(`${base}/_sse-admin/api/channels`)).status).toBe(403);
  const stats = await getJson(`${base}/_sse-admin/api/stats`, ADMIN);
  expect(stats.status).toBe(200);
  expect(stats.body).toMatchObject({
    broker: { name: 'memory', healthy: true },
    processes: 1,
    channels: [{ channel: 'orders', connections: 1, users: 0, eventsPerSecond: 0, history: null }],
    refusals: [
      { kind: 'forbidden', detail: expect.stringMatching(/GET \/channels from 127.0.0.1: not allowed/) },
      { kind: 'forbidden', detail: expect.stringMatching(/admin \/api\/stats from/) },
    ],
  });
});

test('publish takes JSON only: a cross-site form post (text/plain) is refused with 415', async () => {
  const base = await start(isAdmin);
  const reader = await connect(`${base}/events?channels=orders`);
  const form = await fetch(`${base}/_sse-admin/api/publish`, {
    method: 'POST',
    headers: { ...ADMIN, 'Content-Type': 'text/plain' },
    body: JSON.stringify({ channel: 'orders', data: 'forged' }),
  });
  expect(form.status).toBe(415);
  const ok = await fetch(`${base}/_sse-admin/api/publish`, {
    method: 'POST',
    headers: { ...ADMIN, 'Content-Type': 'application/json' },
    body: JSON.stringify({ channel: 'orders', event: 'note', data: 'from the dashboard' }),
  });
  expect(ok.status).toBe(202);
  const events = await reader.waitForEvents(1);
  expect(events).toEqual([{ event: 'note', data: 'from the dashboard' }]);
});

test('the tail is a hub stream of the channel, and is not counted as a subscriber', async () => {
  const base = await start(isAdmin);
  expect((await connect(`${base}/_sse-admin/api/tail?channel=orders`)).status).toBe(403);
  const tail = await connect(`${base}/_sse-admin/api/tail?channel=orders`, ADMIN);
  expect(tail.status).toBe(200);
  expect((await getJson(`${base}/_sse-admin/api/channels`, ADMIN)).body).toMatchObject({ channels: [] });
  await hub.sendEvent('message', '<img src=x onerror=alert(1)>', 'orders');
  expect(await tail.waitForEvents(1)).toEqual([{ event: 'message', data: '<img src=x onerror=alert(1)>' }]);
  const bad = await connect(`${base}/_sse-admin/api/tail?channel=${encodeURIComponent('a b')}`, ADMIN);
  expect(bad.status).toBe(400);
});

test('without authorize: loopback only, never through a proxy', async () => {
  const base = await start();
  expect((await getJson(`${base}/_sse-admin/api/stats`)).status).toBe(200);
  const forwarded = await getJson(`${base}/_sse-admin/api/stats`, { 'X-Forwarded-For': '198.51.100.7' });
  expect(forwarded.status).toBe(403);
  await waitFor(() => hub.refusals.recent().length === 1);
});
