// Who may POST /publish: loopback only without a token — and a request a
// local reverse proxy forwarded is not loopback (regression: a proxied
// /publish let anyone publish); with --publish-token, only the bearer.
import { createServer, type SseServer } from '../../src/cli/server';
import { SseReader } from '../helpers/sse-reader';

let sse: SseServer;
let url: string;

async function post(body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${url}/publish`, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

afterEach(async () => {
  await sse?.close();
});

describe('POST /publish without a token', () => {
  beforeEach(async () => {
    sse = createServer({ hubOptions: { broker: 'memory' } });
    url = `http://127.0.0.1:${(await sse.listen(0)).port}`;
  });

  test('is accepted from loopback and delivered', async () => {
    const reader = await SseReader.open(`${url}/?channels=news`);
    expect(await post({ channel: 'news', data: 'hi' })).toEqual({ status: 202, body: {} });
    expect(await reader.waitForEvents(1)).toEqual([{ event: 'message', data: 'hi' }]);
    reader.close();
  });

  test.each([
    ['X-Forwarded-For', '203.0.113.9'],
    ['Forwarded', 'for=203.0.113.9'],
    ['X-Real-IP', '203.0.113.9'],
  ])('is refused with 403 when a proxy forwarded it (%s)', async (header, value) => {
    const res = await post({ channel: 'news', data: 'hi' }, { [header]: value });
    expect(res.status).toBe(403);
    expect((res.body as { error: string }).error).toMatch(/loopback only.*--publish-token/);
  });
});

describe('POST /publish with a token', () => {
  beforeEach(async () => {
    sse = createServer({ hubOptions: { broker: 'memory' }, publishToken: 's3cret' });
    url = `http://127.0.0.1:${(await sse.listen(0)).port}`;
  });

  test('needs the bearer token, even from loopback', async () => {
    expect((await post({ channel: 'news', data: 'x' })).status).toBe(401);
    expect((await post({ channel: 'news', data: 'x' }, { Authorization: 'Bearer wrong!' })).status).toBe(401);
    expect(await post({ channel: 'news', data: 'x' }, { Authorization: 'Bearer s3cret' })).toEqual({
      status: 202,
      body: {},
    });
  });

  test('accepts a forwarded request that carries the token', async () => {
    const res = await post(
      { channel: 'news', data: 'x' },
      { Authorization: 'Bearer s3cret', 'X-Forwarded-For': '203.0.113.9' },
    );
    expect(res.status).toBe(202);
  });
});
