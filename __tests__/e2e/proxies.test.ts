// The stream survives the two most common "it doesn't work" set-ups:
// nginx with its defaults (proxy_buffering on, HTTP/1.0 upstream) —
// streaming because every stream says `X-Accel-Buffering: no` — and Express's
// compression() in the same app — no compression because every stream says
// `Cache-Control: no-transform`, which compression() honours. Checked on the
// wire with a raw reader that asks for gzip like a browser: the first bytes
// and the first event arrive within 100 ms, through a real nginx and a real
// Express app, and the doctor calls both clean.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import compression from 'compression';
import express from 'express';
import { createHub, fromQuery, sseMiddleware, sseProbe } from '../../src/index';
import type { Hub } from '../../src/core/hub';
import { Nginx, NGINX_PATH } from '../helpers/nginx';
import { describeWithTools } from '../helpers/require-tool';
import { runNode, RUNSERVER } from '../helpers/run-cli';
import { SseReader, type ParsedEvent } from '../helpers/sse-reader';
import { waitFor, waitForEvent } from '../helpers/wait-for';

const BOUND_MS = 100;
const SAMPLES = 5;
const BROWSER = { 'Accept-Encoding': 'gzip, deflate, br' };

describeWithTools([NGINX_PATH], 'the stream behind nginx defaults and Express compression()', () => {
  let hub: Hub | undefined;
  let app: http.Server | undefined;
  let nginx: Nginx | undefined;
  let appUrl = '';
  let readers: SseReader[] = [];
  const figures: Record<string, { firstBytes: number[]; firstEvent: number[] }> = {};

  beforeAll(async () => {
    hub = createHub({ broker: 'memory' });
    const web = express();
    web.use(compression()); // every response of the app, as many apps do
    web.get('/sse/', sseMiddleware({ hub, channels: fromQuery() }));
    web.get('/sse/_probe', sseProbe());
    web.get('/report', (_req, res) => {
      res.json({ rows: Array.from({ length: 200 }, (_, i) => ({ i, text: 'compressible text' })) });
    });
    app = http.createServer(web);
    await new Promise<void>((resolve) => app!.listen(0, '127.0.0.1', resolve));
    const { port } = app.address() as AddressInfo;
    appUrl = `http://127.0.0.1:${port}`;
    // Nothing but proxy_pass: proxy_buffering on, proxy_http_version 1.0, as nginx ships.
    nginx = await Nginx.start(`location / { proxy_pass ${appUrl}; }`);
    // Warm-up (not counted): the first request of a fresh process compiles Express's code paths.
    for (const base of [appUrl, nginx.url]) {
      const reader = await SseReader.open(`${base}/sse/?channels=warmup`, BROWSER);
      await waitFor(() => reader.retry !== undefined, { what: 'the warm-up stream' });
      reader.close();
    }
  });
  afterEach(() => {
    for (const reader of readers) reader.close();
    readers = [];
  });
  afterAll(async () => {
    await nginx?.stop();
    await hub?.close();
    if (app !== undefined) {
      app.closeAllConnections();
      await new Promise((resolve) => app!.close(resolve));
    }
    console.log(`first bytes / first event, ms, ${SAMPLES} streams each: ${JSON.stringify(figures)}`);
  });

  /**
   * The median of the samples is under the bound (one sample may meet a busy
   * moment of this shared 2-core machine); a buffering hop would not deliver at
   * all before the stream ends, which measure() turns into a 2 s timeout.
   */
  function expectWithinBound(label: string): void {
    const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const { firstBytes, firstEvent } = figures[label]!;
    expect({ label, firstBytes: median(firstBytes) < BOUND_MS, firstEvent: median(firstEvent) < BOUND_MS }).toEqual({
      label,
      firstBytes: true,
      firstEvent: true,
    });
  }

  /** Opens a stream like a browser (Accept-Encoding: gzip…), times its first bytes and one event. */
  async function measure(base: string, label: string, channel: string): Promise<SseReader> {
    const t0 = performance.now();
    const reader = await SseReader.open(`${base}/sse/?channels=${channel}`, BROWSER);
    readers.push(reader);
    expect(reader.status).toBe(200);
    await waitFor(() => reader.retry !== undefined, { interval: 1, timeout: 2000, what: 'the first bytes' });
    const firstBytes = performance.now() - t0;
    const arrived = waitForEvent<ParsedEvent>(reader, 'event', 2000);
    const sent = performance.now();
    await hub!.sendEvent('message', { hello: label }, channel);
    const event = await arrived;
    const firstEvent = performance.now() - sent;
    expect(JSON.parse(event.data)).toEqual({ hello: label });
    const entry = (figures[label] ??= { firstBytes: [], firstEvent: [] });
    entry.firstBytes.push(Math.round(firstBytes * 10) / 10);
    entry.firstEvent.push(Math.round(firstEvent * 10) / 10);
    return reader;
  }

  test('compression() is really on: an ordinary JSON answer is compressed (br/gzip), directly and through nginx', async () => {
    for (const base of [appUrl, nginx!.url]) {
      const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
        http.get(`${base}/report`, { headers: BROWSER }, resolve).on('error', reject),
      );
      res.resume();
      expect([base, res.headers['content-encoding']]).toEqual([base, expect.stringMatching(/^(br|gzip)$/)]);
    }
  });

  test(`straight to the Express app with compression(): not compressed, first bytes and first event < ${BOUND_MS} ms`, async () => {
    for (let i = 0; i < SAMPLES; i++) {
      const reader = await measure(appUrl, 'express+compression', `direct${i}`);
      expect(reader.headers['content-encoding']).toBeUndefined();
      expect(reader.headers['cache-control']).toBe('no-cache, no-transform');
      expect(reader.raw).toMatch(/^retry: \d+\n/); // plain text on the wire, not a gzip header
    }
    expectWithinBound('express+compression');
  });

  test(`through nginx with proxy_buffering on (default) to that app: first bytes and first event < ${BOUND_MS} ms`, async () => {
    for (let i = 0; i < SAMPLES; i++) {
      const reader = await measure(nginx!.url, 'nginx-defaults+express+compression', `nginx${i}`);
      expect(reader.headers.server).toMatch(/^nginx/);
      expect(reader.headers['content-encoding']).toBeUndefined();
      expect(reader.raw).toMatch(/^retry: \d+\n/);
    }
    expectWithinBound('nginx-defaults+express+compression');
  });

  test('the doctor calls both clean (the probe mounted with sseProbe() in the Express app)', async () => {
    for (const base of [appUrl, nginx!.url]) {
      const result = await runNode(RUNSERVER, ['--doctor', `${base}/sse/?channels=all`]);
      expect([base, result.code, result.stdout]).toEqual([
        base,
        0,
        expect.stringMatching(/^ok: .*\/sse\/_probe streams unbuffered and uncompressed/),
      ]);
    }
  });
});
