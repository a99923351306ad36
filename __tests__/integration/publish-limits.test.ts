// The /publish body limit is the operator's to set (--max-publish-bytes,
// SSE_MAX_PUBLISH_BYTES, the maxPublishBytes option), and every refused
// publish is counted in /metrics by reason (sse_hub_publish_refused_total),
// so a flood of oversized or browser-sent publishes shows up on a dashboard.
import http from 'node:http';
import { createServer, type SseServer } from '../../src/cli/server';
import { RUNSERVER, runNode, startRunserver, type RunningServer } from '../helpers/run-cli';
import { SseReader } from '../helpers/sse-reader';

let sse: SseServer | undefined;
let cli: RunningServer | undefined;
const readers: SseReader[] = [];

afterEach(async () => {
  for (const r of readers.splice(0)) r.close();
  await sse?.close();
  sse = undefined;
  await cli?.stop();
  cli = undefined;
});

interface Answer {
  status: number;
  body: { error?: string; id?: string };
}

/** A raw POST /publish; `chunked` sends no Content-Length, so the limit must be enforced while reading. */
function publish(
  base: string,
  body: string,
  options: { headers?: Record<string, string>; chunked?: boolean } = {},
): Promise<Answer> {
  const { hostname, port } = new URL(base);
  const headers = { 'Content-Type': 'application/json', ...options.headers };
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, path: '/publish', method: 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Answer['body'] }));
    });
    req.on('error', reject);
    if (options.chunked === true) {
      // Two writes before end(): Node sends Transfer-Encoding: chunked.
      req.write(body.slice(0, 10));
      req.write(body.slice(10));
      req.end();
    } else req.end(body);
  });
}

/** A publish body of exactly `size` bytes. */
function bodyOf(size: number): string {
  const empty = JSON.stringify({ channel: 'all', data: '' });
  return JSON.stringify({ channel: 'all', data: 'x'.repeat(size - empty.length) });
}

async function refusedSample(base: string, reason: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`sse_hub_publish_refused_total{reason="${reason}"} `));
  return line === undefined ? NaN : Number(line.split(' ').pop());
}

describe('--max-publish-bytes', () => {
  test('regression: a body over the flag gets 413 JSON and is counted; one at the limit is delivered', async () => {
    cli = await startRunserver(['--max-publish-bytes', '1024', '--metrics']);
    const base = cli.url.replace(/\/$/, '');
    const reader = await SseReader.open(`${base}/?channels=all`);
    readers.push(reader);
    expect(await refusedSample(base, 'payload-too-large')).toBe(0);

    // Far under the 2 MiB default: only the flag can refuse it.
    const over = await publish(base, bodyOf(1025));
    expect(over).toEqual({ status: 413, body: { error: expect.stringMatching(/larger than 1024 bytes/) } });
    // Without Content-Length, cut while reading.
    expect((await publish(base, bodyOf(4096), { chunked: true })).status).toBe(413);
    expect(await refusedSample(base, 'payload-too-large')).toBe(2);

    expect((await publish(base, bodyOf(1024))).status).toBe(202);
    const [event] = await reader.waitForEvents(1);
    expect(event?.data).toHaveLength(1024 - JSON.stringify({ channel: 'all', data: '' }).length);
    expect(await refusedSample(base, 'payload-too-large')).toBe(2);
  });

  test('SSE_MAX_PUBLISH_BYTES sets it too', async () => {
    cli = await startRunserver(['--metrics'], { SSE_MAX_PUBLISH_BYTES: '512' });
    const base = cli.url.replace(/\/$/, '');
    expect((await publish(base, bodyOf(513))).status).toBe(413);
    expect((await publish(base, bodyOf(512))).status).toBe(202);
    expect(await refusedSample(base, 'payload-too-large')).toBe(1);
  });

  test('a value that is not a positive whole number exits 2 with one line', async () => {
    const result = await runNode(RUNSERVER, ['--port', '0', '--max-publish-bytes', '0']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--max-publish-bytes.*positive whole number/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('sse_hub_publish_refused_total', () => {
  test('counts 401, 403 and 415 refusals by reason, not accepted publishes nor 400s', async () => {
    sse = createServer({ hubOptions: { broker: 'memory' }, metrics: true, maxPublishBytes: 100 });
    const base = `http://127.0.0.1:${(await sse.listen(0)).port}`;
    expect((await publish(base, bodyOf(100))).status).toBe(202);
    expect((await publish(base, 'not json')).status).toBe(400);
    expect((await publish(base, bodyOf(50), { headers: { Origin: 'https://evil.example' } })).status).toBe(403);
    expect((await publish(base, bodyOf(50), { headers: { Host: 'evil.example' } })).status).toBe(403);
    expect((await publish(base, bodyOf(50), { headers: { 'Content-Type': 'text/plain' } })).status).toBe(415);
    expect((await publish(base, bodyOf(101))).status).toBe(413);
    expect(await refusedSample(base, 'forbidden')).toBe(2);
    expect(await refusedSample(base, 'unsupported-media-type')).toBe(1);
    expect(await refusedSample(base, 'payload-too-large')).toBe(1);
    expect(await refusedSample(base, 'unauthorized')).toBe(0);
  });

  test('counts 401 with --publish-token', async () => {
    sse = createServer({ hubOptions: { broker: 'memory' }, metrics: true, publishToken: 'a-long-publish-token' });
    const base = `http://127.0.0.1:${(await sse.listen(0)).port}`;
    expect((await publish(base, bodyOf(50), { headers: { Authorization: 'Bearer wrong' } })).status).toBe(401);
    expect(
      (await publish(base, bodyOf(50), { headers: { Authorization: 'Bearer a-long-publish-token' } })).status,
    ).toBe(202);
    expect(await refusedSample(base, 'unauthorized')).toBe(1);
  });

  test('maxPublishBytes must be a positive whole number', () => {
    expect(() => createServer({ hubOptions: { broker: 'memory' }, maxPublishBytes: 0 })).toThrow(/maxPublishBytes/);
  });
});
