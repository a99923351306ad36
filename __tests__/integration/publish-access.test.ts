// Who may POST /publish: loopback only without a token — and a request a
// local reverse proxy forwarded is not loopback (regression: a proxied
// /publish let anyone publish), nor is a web page in a local browser (Origin,
// a form's Content-Type, a DNS-rebound Host); with --publish-token, only the
// bearer, compared in constant time, with the scheme in any case.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import { createServer, type SseServer } from '../../src/cli/server';
import { describeWithTools } from '../helpers/require-tool';
import { runSend } from '../helpers/run-cli';
import { SseReader } from '../helpers/sse-reader';

let sse: SseServer;
let url: string;
let port: number;
const readers: SseReader[] = [];

const JSON_TYPE = { 'Content-Type': 'application/json' };

async function post(
  body: unknown,
  headers: Record<string, string> = JSON_TYPE,
): Promise<{ status: number; body: { error?: string } }> {
  const res = await fetch(`${url}/publish`, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as { error?: string } };
}

/** A raw request, for headers fetch() will not let a caller set (Host, Origin as a browser sends it). */
function rawPost(headers: Record<string, string>, body: string): Promise<{ status: number; body: { error?: string } }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/publish', method: 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as { error?: string } }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function listen(publishToken?: string): Promise<void> {
  sse = createServer({ hubOptions: { broker: 'memory' }, publishToken });
  port = (await sse.listen(0)).port;
  url = `http://127.0.0.1:${port}`;
}

async function reader(channel: string): Promise<SseReader> {
  const r = await SseReader.open(`${url}/?channels=${channel}`);
  readers.push(r);
  return r;
}

afterEach(async () => {
  for (const r of readers.splice(0)) r.close();
  await sse?.close();
});

describe('POST /publish without a token', () => {
  beforeEach(() => listen());

  test('is accepted from loopback with Content-Type: application/json (charset allowed) and delivered', async () => {
    const r = await reader('news');
    expect(await post({ channel: 'news', data: 'hi' })).toEqual({ status: 202, body: {} });
    expect(await post({ channel: 'news', data: 'ho' }, { 'Content-Type': 'Application/JSON; charset=utf-8' })).toEqual({
      status: 202,
      body: {},
    });
    expect(await r.waitForEvents(2)).toEqual([
      { event: 'message', data: 'hi' },
      { event: 'message', data: 'ho' },
    ]);
  });

  test.each([
    ['X-Forwarded-For', '203.0.113.9'],
    ['Forwarded', 'for=203.0.113.9'],
    ['X-Real-IP', '203.0.113.9'],
  ])('is refused with 403 when a proxy forwarded it (%s)', async (header, value) => {
    const res = await post({ channel: 'news', data: 'hi' }, { ...JSON_TYPE, [header]: value });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatch(/loopback only.*--publish-token/);
  });

  test.each([
    ['Origin', 'http://evil.example'],
    ['Origin', 'null'],
    ['Origin', `http://127.0.0.1:1234`],
    ['Sec-Fetch-Site', 'cross-site'],
  ])('regression: a browser request (%s: %s) is refused with 403 and nothing is published', async (name, value) => {
    const r = await reader('news');
    const res = await rawPost({ ...JSON_TYPE, [name]: value }, JSON.stringify({ channel: 'news', data: 'forged' }));
    expect(res.status).toBe(403);
    expect(res.body.error).toMatch(/web page.*--publish-token/);
    // The marker published next is the first event: the refused one never went out.
    expect((await post({ channel: 'news', data: 'marker' })).status).toBe(202);
    expect(await r.waitForEvents(1)).toEqual([{ event: 'message', data: 'marker' }]);
  });

  test.each([
    ['text/plain;charset=UTF-8'],
    ['application/x-www-form-urlencoded'],
    ['multipart/form-data; boundary=x'],
    ['application/jsonp'],
  ])('regression: Content-Type %s (what a page may post without a preflight) is refused with 415', async (type) => {
    const res = await rawPost({ 'Content-Type': type }, JSON.stringify({ channel: 'news', data: 'forged' }));
    expect(res).toEqual({ status: 415, body: { error: expect.stringMatching(/application\/json/) } });
  });

  test('a body without Content-Type is refused with 415', async () => {
    const res = await rawPost({}, JSON.stringify({ channel: 'news', data: 'x' }));
    expect(res.status).toBe(415);
  });

  test.each([['evil.example'], ['evil.example:8888'], ['127.0.0.1.nip.io'], ['10.0.0.5:80'], ['[::2]']])(
    'regression (DNS rebinding): Host %s is refused with 403',
    async (host) => {
      const res = await rawPost({ ...JSON_TYPE, Host: host }, JSON.stringify({ channel: 'news', data: 'x' }));
      expect(res.status).toBe(403);
      expect(res.body.error).toMatch(/loopback Host/);
    },
  );

  test.each([['127.0.0.1'], ['127.0.0.1:8888'], ['localhost'], ['LOCALHOST:1'], ['[::1]'], ['[::1]:8888']])(
    'Host %s is loopback: accepted',
    async (host) => {
      const res = await rawPost({ ...JSON_TYPE, Host: host }, JSON.stringify({ channel: 'news', data: 'x' }));
      expect(res.status).toBe(202);
    },
  );

  test('sse-send (built CLI) still publishes', async () => {
    const r = await reader('news');
    const sent = await runSend(['news', 'message', 'from sse-send', '--server', url]);
    expect(sent).toMatchObject({ code: 0, stderr: '' });
    expect(await r.waitForEvents(1)).toEqual([{ event: 'message', data: 'from sse-send' }]);
  });
});

describe('the operator endpoints share the loopback rule', () => {
  beforeEach(() => listen());

  test('regression (DNS rebinding): GET /channels under a Host that is not loopback is refused with 403', async () => {
    const get = (host: string): Promise<number> =>
      new Promise((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path: '/channels', headers: { Host: host } }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          })
          .on('error', reject);
      });
    expect(await get('evil.example:8888')).toBe(403);
    expect(await get(`127.0.0.1:${port}`)).toBe(200);
  });
});

describeWithTools(['curl'], 'POST /publish from curl', () => {
  beforeEach(() => listen());

  const curl = (args: string[]): Promise<{ code: number | null; out: string }> =>
    new Promise((resolve) => {
      const proc = spawn('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', ...args]);
      let out = '';
      proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
      proc.on('exit', (code) => resolve({ code, out }));
    });

  test("curl -H 'Content-Type: application/json' publishes; a plain curl -d (a form type) gets 415", async () => {
    const r = await reader('news');
    const body = JSON.stringify({ channel: 'news', data: 'from curl' });
    expect(await curl(['-H', 'Content-Type: application/json', '-d', body, `${url}/publish`])).toEqual({
      code: 0,
      out: '202',
    });
    expect(await r.waitForEvents(1)).toEqual([{ event: 'message', data: 'from curl' }]);
    expect((await curl(['-d', body, `${url}/publish`])).out).toBe('415');
  });
});

describe('POST /publish with a token', () => {
  beforeEach(() => listen('s3cret'));

  test('needs the bearer token, even from loopback', async () => {
    expect((await post({ channel: 'news', data: 'x' })).status).toBe(401);
    expect((await post({ channel: 'news', data: 'x' }, { ...JSON_TYPE, Authorization: 'Bearer wrong!' })).status).toBe(
      401,
    );
    expect((await post({ channel: 'news', data: 'x' }, { ...JSON_TYPE, Authorization: 'Bearer s3cre' })).status).toBe(
      401,
    );
    expect((await post({ channel: 'news', data: 'x' }, { ...JSON_TYPE, Authorization: 's3cret' })).status).toBe(401);
    expect(await post({ channel: 'news', data: 'x' }, { ...JSON_TYPE, Authorization: 'Bearer s3cret' })).toEqual({
      status: 202,
      body: {},
    });
  });

  test.each([['bearer'], ['BEARER'], ['BeArEr']])('regression: the scheme is case-insensitive (%s)', async (scheme) => {
    const res = await post({ channel: 'news', data: 'x' }, { ...JSON_TYPE, Authorization: `${scheme} s3cret` });
    expect(res.status).toBe(202);
  });

  test('regression: the compare is constant-time whatever the length sent (SHA-256 digests, timingSafeEqual)', async () => {
    const spy = jest.spyOn(crypto, 'timingSafeEqual');
    try {
      for (const sent of ['x', 's3cret', 'a much longer token than the real one'.repeat(10)]) {
        spy.mockClear();
        await post({ channel: 'news', data: 'x' }, { ...JSON_TYPE, Authorization: `Bearer ${sent}` });
        // Always one compare of two 32-byte digests: no early exit on the length.
        expect(spy.mock.calls.map(([a, b]) => [a.byteLength, b.byteLength])).toEqual([[32, 32]]);
      }
    } finally {
      spy.mockRestore();
    }
  });

  test('accepts a forwarded request that carries the token', async () => {
    const res = await post(
      { channel: 'news', data: 'x' },
      { ...JSON_TYPE, Authorization: 'Bearer s3cret', 'X-Forwarded-For': '203.0.113.9' },
    );
    expect(res.status).toBe(202);
  });

  test('the token is the authority: Origin, another Host and any Content-Type are accepted with it', async () => {
    const res = await rawPost(
      {
        Authorization: 'Bearer s3cret',
        Origin: 'https://app.example',
        Host: 'sse.example',
        'Content-Type': 'text/plain',
      },
      JSON.stringify({ channel: 'news', data: 'x' }),
    );
    expect(res.status).toBe(202);
  });
});
