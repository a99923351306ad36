// fromToken() inside an Express app, as docs/tokens.md shows it: the npm
// eventsource client with the token cookie receives its channels, is ended at
// exp, and its automatic reconnect (same, now expired, token) is refused for
// good; allowAnonymous lets a request without a token listen on `all`;
// createCors() in front of the route allows the listed origin only.
import http from 'node:http';
import express from 'express';
import { EventSource } from 'eventsource';
import { SignJWT } from 'jose';
import { createCors, createHub, fromToken, sseMiddleware, type Hub } from '../../src/index';
import { listen, type Listening } from '../helpers/listen';
import { waitFor } from '../helpers/wait-for';

const SECRET = 'middleware-test-secret-of-32-bytes';
const ORIGIN = 'https://www.example.com';

const sign = (claims: Record<string, unknown>): Promise<string> =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));

describe('sseMiddleware({ channels: fromToken(...) }) in Express', () => {
  let hub: Hub;
  let web: Listening;
  const sources: EventSource[] = [];

  beforeAll(async () => {
    hub = createHub({ broker: 'memory', retry: 100 });
    const app = express();
    const cors = createCors({ origins: [ORIGIN] });
    app.use('/sse/', (req, res, next) => (cors(req, res) ? undefined : next()));
    app.get('/sse/', sseMiddleware({ hub, channels: fromToken({ secrets: [SECRET] }) }));
    app.get('/open/', sseMiddleware({ hub, channels: fromToken({ secrets: [SECRET] }), allowAnonymous: true }));
    web = await listen(http.createServer(app));
  });
  afterEach(() => {
    for (const source of sources.splice(0)) source.close();
  });
  afterAll(async () => {
    await hub.close();
    await web.close();
  });

  function open(path: string, cookie?: string): { source: EventSource; got: string[]; statuses: number[] } {
    const got: string[] = [];
    const statuses: number[] = [];
    const source = new EventSource(`${web.url}${path}`, {
      fetch: async (input, init) => {
        const res = await fetch(input, { ...init, headers: { ...init?.headers, ...(cookie ? { cookie } : {}) } });
        statuses.push(res.status);
        return res;
      },
    });
    source.addEventListener('message', (e) => got.push(e.data));
    sources.push(source);
    return { source, got, statuses };
  }

  test('the token cookie opens its channels; at exp the stream ends and the reconnect is refused for good', async () => {
    const token = await sign({ sub: 'bob', channels: ['bob', 'all'], exp: Math.floor(Date.now() / 1000) + 2 });
    const bob = open('/sse/', `sse_token=${token}`);
    await waitFor(() => hub.stats().connections === 1, { what: 'the stream' });
    await hub.sendEvent('message', 'for bob', 'bob');
    await hub.sendEvent('message', 'for carol', 'carol');
    await hub.sendEvent('message', 'for all', 'all');
    await waitFor(() => bob.got.length === 2, { what: 'two events' });
    expect(bob.got).toEqual(['for bob', 'for all']);

    await waitFor(() => bob.source.readyState === EventSource.CLOSED, { timeout: 5000, what: 'the end at exp' });
    expect(bob.statuses).toEqual([200, 403]);
    expect(hub.stats().connections).toBe(0);
  });

  test('allowAnonymous: no token listens on all; a bad token is still refused', async () => {
    const anonymous = open('/open/');
    await waitFor(() => hub.stats().connections === 1, { what: 'the anonymous stream' });
    await hub.sendEvent('message', 'public', 'all');
    await waitFor(() => anonymous.got.length === 1, { what: 'the public event' });
    const bad = open('/open/', 'sse_token=not.a.token');
    await waitFor(() => bad.source.readyState === EventSource.CLOSED, { what: 'the refusal' });
    expect(bad.statuses).toEqual([403]);
  });

  test('createCors(): the listed origin gets the credentials headers; another gets none', async () => {
    const token = await sign({ channels: ['all'], exp: Math.floor(Date.now() / 1000) + 60 });
    const ask = (origin: string) =>
      fetch(`${web.url}/sse/`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'GET' },
      });
    const allowed = await ask(ORIGIN);
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-credentials')).toBe('true');
    expect((await ask('https://evil.example')).headers.get('access-control-allow-origin')).toBeNull();

    const controller = new AbortController();
    const res = await fetch(`${web.url}/sse/?token=${token}`, {
      headers: { origin: ORIGIN },
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    controller.abort();
  });
});
