// Without a token, /channels and the admin dashboard's API trust loopback,
// where a page of any site, open in the user's browser, can reach them too.
// So a request a browser sent for another origin (Sec-Fetch-Site other than
// same-origin/none, or an Origin other than the server's own) is refused with
// 403; the dashboard's own fetches (same-origin, and Origin = its Host on
// POST) and programs (no such headers) still work. With a token, the token
// is the authority.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createHub, sseAdmin, type Hub } from '../../src';
import { createServer, type SseServer } from '../../src/cli/server';

let sse: SseServer | undefined;
let hub: Hub | undefined;
let app: http.Server | undefined;

afterEach(async () => {
  await sse?.close();
  sse = undefined;
  app?.closeAllConnections();
  await new Promise((resolve) => (app === undefined ? resolve(undefined) : app.close(resolve)));
  app = undefined;
  await hub?.close();
  hub = undefined;
});

interface Answer {
  status: number;
  text: string;
}

/** A raw request, so that Origin, Sec-Fetch-Site and Host go out as a browser writes them. */
function request(port: number, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: body === undefined ? 'GET' : 'POST', headers },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function serve(adminToken?: string): Promise<number> {
  sse = createServer({ hubOptions: { broker: 'memory' }, admin: true, adminToken });
  return (await sse.listen(0)).port;
}

const JSON_TYPE = { 'Content-Type': 'application/json' };
const EVENT = JSON.stringify({ channel: 'news', data: 'hi' });

describe('without a token', () => {
  test.each([
    ['/_admin/api/stats', { 'Sec-Fetch-Site': 'cross-site' }],
    // Every port of localhost is one site: a dev server's page is "same-site".
    ['/_admin/api/stats', { 'Sec-Fetch-Site': 'same-site' }],
    ['/_admin/api/stats', { Origin: 'http://evil.example' }],
    ['/_admin/api/channels', { Origin: 'http://localhost:3000' }],
    ['/_admin/api/tail?channel=news', { Origin: 'null' }],
    ['/channels', { 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'no-cors' }],
  ])('regression: GET %s with %j is refused with 403, and logged', async (path, headers) => {
    const port = await serve();
    const answer = await request(port, path, headers);
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.text)).toEqual({
      error: expect.stringMatching(/web page of another site.*--admin-token/),
    });
    expect(sse?.hub.refusals.recent()[0]).toMatchObject({ kind: 'forbidden' });
  });

  test('regression: a cross-site POST to api/publish is refused with 403 and nothing is published', async () => {
    const port = await serve();
    const host = `127.0.0.1:${port}`;
    const foreign = await request(
      port,
      '/_admin/api/publish',
      { ...JSON_TYPE, Origin: 'http://evil.example', 'Sec-Fetch-Site': 'cross-site' },
      EVENT,
    );
    expect(foreign.status).toBe(403);
    // Its own Origin, but sent for another site's page: still refused.
    const spoofed = await request(
      port,
      '/_admin/api/publish',
      { ...JSON_TYPE, Origin: `http://${host}`, 'Sec-Fetch-Site': 'cross-site' },
      EVENT,
    );
    expect(spoofed.status).toBe(403);
    expect(sse?.hub.stats().eventsReceived).toBe(0);
  });

  test("the dashboard's own requests pass: same-origin GETs, and POSTs whose Origin is the Host's", async () => {
    const port = await serve();
    const own = { 'Sec-Fetch-Site': 'same-origin' };
    expect((await request(port, '/_admin/api/stats', own)).status).toBe(200);
    // A typed URL or a bookmark: Sec-Fetch-Site: none.
    expect((await request(port, '/_admin/api/stats', { 'Sec-Fetch-Site': 'none' })).status).toBe(200);
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
      const answer = await request(
        port,
        '/_admin/api/publish',
        { ...JSON_TYPE, ...own, Host: host, Origin: `http://${host}` },
        EVENT,
      );
      expect(answer.status).toBe(202);
    }
    // The page itself holds no data, and a link from anywhere may open it.
    expect((await request(port, '/_admin/', { 'Sec-Fetch-Site': 'cross-site' })).status).toBe(200);
    // Programs send neither header.
    expect((await request(port, '/channels', {})).status).toBe(200);
  });

  test("sseAdmin() in an Express app (loopback by default) refuses another site's page too", async () => {
    hub = createHub({ broker: 'memory' });
    const admin = sseAdmin({ hub });
    const server = express().use('/_sse-admin', admin);
    app = server.listen(0, '127.0.0.1');
    await new Promise((resolve) => app?.once('listening', resolve));
    const port = (app.address() as AddressInfo).port;
    try {
      expect((await request(port, '/_sse-admin/api/stats', { 'Sec-Fetch-Site': 'cross-site' })).status).toBe(403);
      expect((await request(port, '/_sse-admin/api/stats', { 'Sec-Fetch-Site': 'same-origin' })).status).toBe(200);
    } finally {
      admin.close();
    }
  });
});

test('with a token, the token is the authority: a cross-site request carrying it passes', async () => {
  const port = await serve('an-admin-token');
  const headers = { Origin: 'https://ops.example', 'Sec-Fetch-Site': 'cross-site' };
  expect((await request(port, '/_admin/api/stats', headers)).status).toBe(401);
  const answer = await request(port, '/_admin/api/stats', { ...headers, Authorization: 'Bearer an-admin-token' });
  expect(answer.status).toBe(200);
});
