// clientScripts(): public/ and the npm EventSource polyfill, with content
// types and cache headers (docs/api.md, docs/browser.md). Served over a
// loopback server on port 0, since headers are what is under test.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { clientScripts, polyfillFile, publicDir, POLYFILL_PATH } from '../../src/http/client-scripts';
import { createServer, STATIC_PREFIX } from '../../src/cli/server';
import { listen, type Listening } from '../helpers/listen';

const ROOT = join(__dirname, '..', '..');
const JS = 'text/javascript; charset=utf-8';

let open: Listening[] = [];
afterEach(async () => {
  await Promise.all(open.map((l) => l.close()));
  open = [];
});

/** Mounts clientScripts() at /media/sse-hub like a user would, with a 404 fallthrough. */
async function serve(options?: Parameters<typeof clientScripts>[0]): Promise<string> {
  const scripts = clientScripts(options);
  const mount = '/media/sse-hub';
  const listening = await listen((req, res) => {
    const url = req.url ?? '/';
    const fallthrough = (err?: unknown): void => {
      res.statusCode = err ? 500 : 404;
      res.end(err ? 'error' : 'fallthrough');
    };
    if (!url.startsWith(`${mount}/`)) return fallthrough();
    req.url = url.slice(mount.length);
    scripts(req, res, fallthrough);
  });
  open.push(listening);
  return `${listening.url}${mount}`;
}

describe('clientScripts()', () => {
  test('finds the package public/ folder and the installed polyfill', () => {
    expect(publicDir()).toBe(join(ROOT, 'public'));
    expect(polyfillFile()).toBe(require.resolve('event-source-polyfill/src/eventsource.min.js'));
  });

  test.each(['sse.js', 'jquery.eventsource.js'])('serves %s as JavaScript with cache headers', async (file) => {
    const base = await serve();
    const res = await fetch(`${base}/${file}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(JS);
    expect(res.headers.get('cache-control')).toBe('public, max-age=3600');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('etag')).toBeTruthy();
    expect(res.headers.get('last-modified')).toBeTruthy();
    expect(await res.text()).toBe(readFileSync(join(ROOT, 'public', file), 'utf8'));
  });

  test('serves the npm event-source-polyfill at eventsource-polyfill.js, unchanged', async () => {
    const base = await serve();
    const res = await fetch(`${base}${POLYFILL_PATH}?v=1`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(JS);
    expect(res.headers.get('cache-control')).toBe('public, max-age=3600');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const body = await res.text();
    expect(body).toBe(readFileSync(require.resolve('event-source-polyfill/src/eventsource.min.js'), 'utf8'));
    expect(body).toContain('EventSourcePolyfill');
  });

  test('answers 304 to a conditional GET, so browsers revalidate cheaply after max-age', async () => {
    const base = await serve();
    for (const file of ['sse.js', POLYFILL_PATH.slice(1)]) {
      const first = await fetch(`${base}/${file}`);
      await first.arrayBuffer();
      const etag = first.headers.get('etag') as string;
      // A raw request: fetch() adds Cache-Control: no-cache to conditional requests.
      expect(await rawStatus(`${base}/${file}`, { 'If-None-Match': etag })).toBe(304);
    }
  });

  test('HEAD gives the headers without a body', async () => {
    const base = await serve();
    const res = await fetch(`${base}/sse.js`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(JS);
    expect(await res.text()).toBe('');
  });

  test('maxAge sets Cache-Control (seconds) and is validated when the factory runs', async () => {
    const base = await serve({ maxAge: 60 });
    const res = await fetch(`${base}/jquery.eventsource.js`);
    await res.arrayBuffer();
    expect(res.headers.get('cache-control')).toBe('public, max-age=60');
    expect(() => clientScripts({ maxAge: -1 })).toThrow(TypeError);
    expect(() => clientScripts({ maxAge: 1.5 })).toThrow(/maxAge must be a whole number of seconds/);
  });

  test('unknown files, other methods and paths outside the mount fall through to next()', async () => {
    const base = await serve();
    const missing = await fetch(`${base}/nope.js`);
    expect([missing.status, await missing.text()]).toEqual([404, 'fallthrough']);
    // Only the one polyfill file is reachable, not the rest of the package folder.
    const raw = await fetch(`${base}/eventsource.min.js`);
    expect([raw.status, await raw.text()]).toEqual([404, 'fallthrough']);
    const post = await fetch(`${base}/sse.js`, { method: 'POST' });
    expect([post.status, await post.text()]).toEqual([404, 'fallthrough']);
    const status = await rawStatus(`${base}/../package.json`);
    expect(status).not.toBe(200);
    const dir = await fetch(`${base}/`);
    expect(dir.status).toBe(404);
    await dir.text();
  });
});

describe('sse-runserver static mount', () => {
  test(`createServer() serves the scripts and the polyfill at ${STATIC_PREFIX}`, async () => {
    const sse = createServer();
    const address = await sse.listen(0);
    try {
      const base = `http://127.0.0.1:${address.port}${STATIC_PREFIX}`;
      for (const file of ['sse.js', 'jquery.eventsource.js', 'eventsource-polyfill.js']) {
        const res = await fetch(base + file);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toBe(JS);
        expect(res.headers.get('cache-control')).toBe('public, max-age=3600');
        await res.arrayBuffer();
      }
      const missing = await fetch(`${base}nope.js`);
      expect(missing.status).toBe(404);
      expect(missing.headers.get('content-type')).toMatch(/^application\/json/);
      await missing.arrayBuffer();
    } finally {
      await sse.close();
    }
  });
});

/** Status of a GET sent as written (fetch would normalise `/../` and add headers). */
function rawStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  const { hostname, port, pathname } = new URL(url.replace('/../', '/__DOTDOT__/'));
  const path = pathname.replace('/__DOTDOT__/', '/../');
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, path, method: 'GET', headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}
