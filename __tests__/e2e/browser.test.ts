// The browser scripts in real headless Chromium:
// a tornado-sse page (<body sse-data>, jQuery, sse.js) gets sse.<type> events
// through jQuery handlers and native listeners with the published objects;
// $.eventsource pages receive; a restarted server is rejoined by the browser
// itself; browsers without EventSource get the npm polyfill from the same
// mount, kept alive by the server heartbeat. jQuery 3 and 4 both.
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { CHROMIUM_PATH, htmlPage, launchChromium, PageServer, pageErrors, type JQueryName } from '../helpers/chromium';
import express from 'express';
import { createHub, HttpError, sseMiddleware } from '../../src/index';
import { listen } from '../helpers/listen';
import { describeWithTools } from '../helpers/require-tool';
import { waitFor } from '../helpers/wait-for';

declare global {
  interface Window {
    seen: Seen[];
    firstSource?: unknown;
    sseHub: { close(): void; source: { readyState: number } | null; url: string | null; events: string[] };
    jQuery?: unknown;
  }
}

/** The slice of jQuery + $.eventsource the pages are driven through. */
interface PluginJQuery {
  eventsource: ((command: 'streams' | 'close', label?: string) => Record<string, unknown>) & {
    close(label?: string): Record<string, unknown>;
  };
}

interface Seen {
  via: 'dom' | 'jquery' | 'plugin';
  name: string;
  msg?: unknown;
  type?: string;
  namespace?: string;
  argc?: number;
  [key: string]: unknown;
}

/** Heartbeat of the hub at /sse/ (ms): short, so the polyfill test stays quick. */
const HEARTBEAT = 300;
/** The polyfill's inactivity timeout the polyfill pages ask for (ms). */
const POLYFILL_TIMEOUT = 1200;

const NAMES = ['sse.open', 'sse.error', 'sse.message', 'sse.foo', 'sse.alert', 'sse.bar'];

/** Inline script recording every sse.* event, by DOM listener and (when present) jQuery handler. */
const RECORDER = `<script>
window.seen = [];
${JSON.stringify(NAMES)}.forEach(function (name) {
  document.body.addEventListener(name, function (e) {
    seen.push({ via: 'dom', name: e.type, msg: e.detail, t: Date.now() });
  });
  if (window.jQuery) {
    jQuery('body').on(name, function (e, msg) {
      seen.push({ via: 'jquery', name: name, type: e.type, namespace: e.namespace, msg: msg, argc: arguments.length });
    });
  }
});
</script>`;

describeWithTools([CHROMIUM_PATH], 'browser scripts in headless Chromium', () => {
  let browser: Browser;
  let server: PageServer;
  let context: BrowserContext;
  let errors: string[];

  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });
  beforeEach(async () => {
    server = new PageServer({ hub: { heartbeat: HEARTBEAT }, extraStreams: { '/quiet/': { heartbeat: 60_000 } } });
    await server.start();
    context = await browser.newContext();
  });
  afterEach(async () => {
    await context?.close();
    await server?.stop();
  });

  async function open(url: string, setup?: (page: Page) => Promise<void>): Promise<Page> {
    const page = await context.newPage();
    errors = pageErrors(page);
    if (setup) await setup(page);
    await page.goto(url);
    return page;
  }

  const seen = (page: Page): Promise<Seen[]> => page.evaluate(() => window.seen);
  const count = async (page: Page, via: string, name: string): Promise<number> =>
    (await seen(page)).filter((e) => e.via === via && e.name === name).length;
  async function waitSeen(page: Page, via: string, name: string, n = 1, timeout = 10_000): Promise<void> {
    await page.waitForFunction(
      ([v, nm, k]) => window.seen.filter((e) => e.via === v && e.name === nm).length >= (k as number),
      [via, name, n] as const,
      { timeout },
    );
  }
  const connections = (): number => server.hub.stats().connections;

  describe.each<JQueryName>(['jquery3', 'jquery4'])('with %s', (jquery) => {
    test('a tornado-sse page gets sse.message and sse.foo through jQuery and addEventListener, with the published objects', async () => {
      const url = server.page(
        'sse',
        htmlPage({
          jquery,
          scripts: ['jquery.eventsource.js', 'sse.js'],
          bodyAttrs: 'sse-data="/sse/?channels=all,foo" sse-events="alert"',
          body: RECORDER,
        }),
      );
      const page = await open(url);
      await waitSeen(page, 'jquery', 'sse.open');
      expect(await page.evaluate(() => window.sseHub.url)).toBe('/sse/?channels=all,foo');
      expect(await page.evaluate(() => window.sseHub.events)).toEqual(['message', 'alert']);

      const message = { type: 'message', user: 'tug', text: 'hello', nested: { n: [1, 2] } };
      const foo = { type: 'foo', html: '<b>bar</b>', user: 'bar' };
      await server.hub.sendEvent('message', message, 'all');
      await server.hub.sendEvent('message', foo, 'foo');
      await server.hub.sendEvent('message', 'plain text, not JSON', 'all');
      await server.hub.sendEvent('message', [1, 2, 3], 'all');
      await server.hub.sendEvent('alert', { level: 'high' }, 'all'); // a named event, no type
      await server.hub.sendEvent('message', { type: 'bar' }, 'bar'); // a channel the page does not listen on
      await server.hub.sendEvent('message', { type: 'foo', last: true }, 'foo');
      await waitSeen(page, 'jquery', 'sse.foo', 2);
      await waitSeen(page, 'dom', 'sse.foo', 2);

      const events = (await seen(page)).filter((e) => e.name !== 'sse.open');
      const viaJquery = events.filter((e) => e.via === 'jquery');
      const viaDom = events.filter((e) => e.via === 'dom');
      // Exactly as tornado-sse: type `sse`, namespace from msg.type, msg as the second argument.
      expect(viaJquery).toEqual([
        { via: 'jquery', name: 'sse.message', type: 'sse', namespace: 'message', msg: message, argc: 2 },
        { via: 'jquery', name: 'sse.foo', type: 'sse', namespace: 'foo', msg: foo, argc: 2 },
        { via: 'jquery', name: 'sse.message', type: 'sse', namespace: 'message', msg: 'plain text, not JSON', argc: 2 },
        { via: 'jquery', name: 'sse.message', type: 'sse', namespace: 'message', msg: [1, 2, 3], argc: 2 },
        { via: 'jquery', name: 'sse.alert', type: 'sse', namespace: 'alert', msg: { level: 'high' }, argc: 2 },
        { via: 'jquery', name: 'sse.foo', type: 'sse', namespace: 'foo', msg: { type: 'foo', last: true }, argc: 2 },
      ]);
      expect(viaDom.map((e) => [e.name, e.msg])).toEqual(viaJquery.map((e) => [e.name, e.msg]));
      expect(await count(page, 'dom', 'sse.bar')).toBe(0);
      expect(await count(page, 'dom', 'sse.error')).toBe(0);
      expect(await page.evaluate(() => typeof window.jQuery === 'function')).toBe(true);
      expect(errors).toEqual([]);
    });

    test('a page using $.eventsource (tornado-sse plugin API) receives, and close(label) closes that stream', async () => {
      const url = server.page(
        'plugin',
        htmlPage({
          jquery,
          scripts: ['jquery.eventsource.js'],
          body: `<script>
window.seen = [];
$.eventsource({
  label: 'sse',
  url: '/sse/?channels=all',
  dataType: 'json',
  open: function () { seen.push({ via: 'plugin', name: 'open', label: this.label }); },
  message: function (msg, info, event) {
    seen.push({ via: 'plugin', name: 'message', msg: msg, info: info, eventType: event.type, label: this.label });
  },
  error: function () { seen.push({ via: 'plugin', name: 'error' }); }
});
$.eventsource({
  label: 'text',
  url: '/sse/',
  data: { channels: 'foo' },
  dataType: 'text',
  open: function () { seen.push({ via: 'plugin', name: 'text-open' }); },
  message: function (msg) { seen.push({ via: 'plugin', name: 'text', msg: msg }); }
});
</script>`,
        }),
      );
      const page = await open(url);
      await waitSeen(page, 'plugin', 'open');
      await waitSeen(page, 'plugin', 'text-open');
      expect(
        await page.evaluate(() =>
          Object.keys((window as unknown as { jQuery: PluginJQuery }).jQuery.eventsource('streams')).sort(),
        ),
      ).toEqual(['sse', 'text']);

      const message = { type: 'message', user: 'tug' };
      await server.hub.sendEvent('message', message, 'all');
      await server.hub.sendEvent('message', { type: 'foo', n: 1 }, 'foo');
      await waitSeen(page, 'plugin', 'message');
      await waitSeen(page, 'plugin', 'text');
      const got = await seen(page);
      expect(got.find((e) => e.name === 'open')).toEqual({ via: 'plugin', name: 'open', label: 'sse' });
      expect(got.find((e) => e.name === 'message')).toEqual({
        via: 'plugin',
        name: 'message',
        msg: message,
        info: { data: [message], lastEventId: '' },
        eventType: 'message',
        label: 'sse',
      });
      // dataType 'text': the raw data string.
      expect(got.find((e) => e.name === 'text')?.msg).toBe('{"type":"foo","n":1}');

      await waitFor(() => connections() === 2, { what: 'two streams at the server' });
      const left = await page.evaluate(() => {
        const $ = (window as unknown as { jQuery: PluginJQuery }).jQuery;
        const closing = ($.eventsource('streams', 'sse') as { stream: { readyState: number } }).stream;
        const remaining = Object.keys($.eventsource('close', 'sse'));
        return { remaining, readyState: closing.readyState };
      });
      expect(left).toEqual({ remaining: ['text'], readyState: 2 });
      await waitFor(() => connections() === 1, { what: 'the closed stream to leave the server' });

      // Nothing reaches a closed label; the other stream still receives.
      await server.hub.sendEvent('message', { type: 'message', after: 'close' }, 'all');
      await server.hub.sendEvent('message', 'marker', 'foo');
      await page.waitForFunction(() => window.seen.some((e) => e.name === 'text' && e.msg === 'marker'));
      expect(await count(page, 'plugin', 'message')).toBe(1);

      expect(
        await page.evaluate(() =>
          Object.keys((window as unknown as { jQuery: PluginJQuery }).jQuery.eventsource.close()),
        ),
      ).toEqual([]);
      await waitFor(() => connections() === 0, { what: 'every stream to leave the server' });
      expect(errors).toEqual([]);
    });

    test('after a server restart the page reconnects by itself and keeps receiving', async () => {
      const url = server.page(
        'restart',
        htmlPage({ jquery, scripts: ['sse.js'], bodyAttrs: 'sse-data="/sse/?channels=all"', body: RECORDER }),
      );
      const page = await open(url);
      await waitSeen(page, 'jquery', 'sse.open');
      await page.evaluate(() => (window.firstSource = window.sseHub.source));
      await server.hub.sendEvent('message', { type: 'message', n: 1 }, 'all');
      await waitSeen(page, 'jquery', 'sse.message', 1);

      const port = server.port;
      await server.restart();
      expect(server.port).toBe(port);
      await waitSeen(page, 'jquery', 'sse.error', 1);
      await waitSeen(page, 'jquery', 'sse.open', 2);
      await waitFor(() => connections() === 1, { what: 'the browser back on the new server' });
      await server.hub.sendEvent('message', { type: 'message', n: 2 }, 'all');
      await waitSeen(page, 'jquery', 'sse.message', 2);

      const messages = (await seen(page))
        .filter((e) => e.via === 'jquery' && e.name === 'sse.message')
        .map((e) => e.msg);
      expect(messages).toEqual([
        { type: 'message', n: 1 },
        { type: 'message', n: 2 },
      ]);
      // The same EventSource reconnected (no page code involved); sse.error said "reconnecting" (readyState 0).
      expect(await page.evaluate(() => window.firstSource === window.sseHub.source)).toBe(true);
      const error = (await seen(page)).find((e) => e.via === 'dom' && e.name === 'sse.error');
      expect(error?.msg).toEqual({ url: expect.stringContaining('/sse/?channels=all'), readyState: 0 });

      await page.evaluate(() => window.sseHub.close());
      expect(await page.evaluate(() => window.sseHub.source)).toBeNull();
      await waitFor(() => connections() === 0, { what: 'sseHub.close() to end the stream' });
    });
  });

  describe('without a native EventSource', () => {
    /** Removes the browser's EventSource before any page script runs, and records polyfill requests. */
    async function withoutEventSource(page: Page, requests: string[]): Promise<void> {
      page.on('request', (req) => requests.push(new URL(req.url()).pathname));
      await page.addInitScript(() => {
        delete (window as { EventSource?: unknown }).EventSource;
      });
    }

    test('sse.js loads event-source-polyfill from its own mount and dispatches as usual', async () => {
      const requests: string[] = [];
      const url = server.page(
        'polyfill',
        htmlPage({
          scripts: ['sse.js'],
          bodyAttrs: `sse-data="/sse/?channels=all,foo" sse-heartbeat-timeout="${POLYFILL_TIMEOUT}"`,
          body: RECORDER,
        }),
      );
      const page = await open(url, (p) => withoutEventSource(p, requests));
      await waitSeen(page, 'dom', 'sse.open');
      expect(requests).toContain('/static/sse-hub/eventsource-polyfill.js');
      expect(
        await page.evaluate(() => {
          const w = window as unknown as { EventSourcePolyfill: new () => unknown; NativeEventSource: unknown };
          return {
            polyfilled: window.sseHub.source instanceof w.EventSourcePolyfill,
            native: w.NativeEventSource ?? null,
          };
        }),
      ).toEqual({ polyfilled: true, native: null });

      await server.hub.sendEvent('message', { type: 'foo', via: 'polyfill' }, 'foo');
      await server.hub.sendEvent('message', 'raw', 'all');
      await waitSeen(page, 'dom', 'sse.foo');
      await waitSeen(page, 'dom', 'sse.message');
      const got = (await seen(page)).filter((e) => e.name !== 'sse.open').map((e) => [e.name, e.msg]);
      expect(got).toEqual([
        ['sse.foo', { type: 'foo', via: 'polyfill' }],
        ['sse.message', 'raw'],
      ]);
      expect(errors).toEqual([]);
    });

    test(`the server heartbeat (${HEARTBEAT} ms) keeps the polyfill's ${POLYFILL_TIMEOUT} ms inactivity timeout from firing`, async () => {
      const requests: string[] = [];
      const url = server.page(
        'heartbeat',
        htmlPage({
          scripts: ['sse.js'],
          bodyAttrs: `sse-data="/sse/?channels=all" sse-heartbeat-timeout="${POLYFILL_TIMEOUT}"`,
          body: RECORDER,
        }),
      );
      const page = await open(url, (p) => withoutEventSource(p, requests));
      await waitSeen(page, 'dom', 'sse.open');
      const openedAt = Date.now();
      // The claim is about silence: no event may happen for 3 timeouts, so this
      // waits out that window (while the control below shows the timeout fires
      // in ~1 timeout when pings are missing).
      await page.waitForFunction(
        ([since, span]) =>
          Date.now() - (since as number) > (span as number) || window.seen.some((e) => e.name === 'sse.error'),
        [openedAt, 3 * POLYFILL_TIMEOUT] as const,
        { timeout: 10_000, polling: 100 },
      );
      expect(await count(page, 'dom', 'sse.error')).toBe(0);
      expect(await count(page, 'dom', 'sse.open')).toBe(1);
      await server.hub.sendEvent('message', { type: 'message', after: 'idle' }, 'all');
      await waitSeen(page, 'dom', 'sse.message');
      expect(await count(page, 'dom', 'sse.open')).toBe(1);
    });

    test('control: without pings (60 s heartbeat) the polyfill times out and reconnects', async () => {
      const requests: string[] = [];
      const url = server.page(
        'quiet',
        htmlPage({
          scripts: ['sse.js'],
          bodyAttrs: `sse-data="/quiet/?channels=all" sse-heartbeat-timeout="${POLYFILL_TIMEOUT}"`,
          body: RECORDER,
        }),
      );
      const page = await open(url, (p) => withoutEventSource(p, requests));
      await waitSeen(page, 'dom', 'sse.open');
      await waitSeen(page, 'dom', 'sse.error', 1, 5 * POLYFILL_TIMEOUT);
      await waitSeen(page, 'dom', 'sse.open', 2, 5 * POLYFILL_TIMEOUT);
      const got = await seen(page);
      const firstOpen = got.find((e) => e.name === 'sse.open')?.t as number;
      const firstError = got.find((e) => e.name === 'sse.error')?.t as number;
      expect(firstError - firstOpen).toBeGreaterThanOrEqual(POLYFILL_TIMEOUT - 100);
    });

    test('jquery.eventsource.js loads the same polyfill and receives', async () => {
      const requests: string[] = [];
      const url = server.page(
        'plugin-polyfill',
        htmlPage({
          jquery: 'jquery4',
          scripts: ['jquery.eventsource.js'],
          body: `<script>
window.seen = [];
$.eventsource({
  label: 'sse', url: '/sse/?channels=all', dataType: 'json',
  open: function () { seen.push({ via: 'plugin', name: 'open' }); },
  message: function (msg) { seen.push({ via: 'plugin', name: 'message', msg: msg, polyfilled: this instanceof window.EventSourcePolyfill }); }
});
</script>`,
        }),
      );
      const page = await open(url, (p) => withoutEventSource(p, requests));
      await waitSeen(page, 'plugin', 'open');
      expect(requests.filter((p) => p === '/static/sse-hub/eventsource-polyfill.js')).toHaveLength(1);
      await server.hub.sendEvent('message', { type: 'message', n: 7 }, 'all');
      await waitSeen(page, 'plugin', 'message');
      expect((await seen(page)).find((e) => e.name === 'message')).toEqual({
        via: 'plugin',
        name: 'message',
        msg: { type: 'message', n: 7 },
        polyfilled: true,
      });
      expect(errors).toEqual([]);
    });
  });

  describe('the <body> attribute and the origin of the stream', () => {
    test('<body data-sse="..."> opens the stream like sse-data', async () => {
      const url = server.page(
        'data-sse',
        htmlPage({ scripts: ['sse.js'], bodyAttrs: 'data-sse="/sse/?channels=all"', body: RECORDER }),
      );
      const page = await open(url);
      await waitSeen(page, 'dom', 'sse.open');
      expect(await page.evaluate(() => window.sseHub.url)).toBe('/sse/?channels=all');
      await waitFor(() => connections() === 1, { what: 'the stream at the hub' });
      await server.hub.sendEvent('message', { type: 'message', n: 1 }, 'all');
      await waitSeen(page, 'dom', 'sse.message');
      expect((await seen(page)).find((e) => e.name === 'sse.message')?.msg).toEqual({ type: 'message', n: 1 });
      expect(errors).toEqual([]);
    });

    test("sse.js sends the site's cookies to a stream on another origin (withCredentials); a bare EventSource does not", async () => {
      // The stream lives on a second origin: another port of 127.0.0.1, so the
      // cookie (set for 127.0.0.1, any port) is first-party but crosses origins.
      const cookies: (string | undefined)[] = [];
      const streamHub = createHub({ broker: 'memory', retry: 250 });
      const app = express();
      app.use('/sse/', (_req, res, next) => {
        res.setHeader('Access-Control-Allow-Origin', server.url);
        res.setHeader('Access-Control-Allow-Credentials', 'true');
        next();
      });
      app.get(
        '/sse/',
        sseMiddleware({
          hub: streamHub,
          channels: (req) => {
            cookies.push(req.headers.cookie);
            const user = /(?:^|;\s*)user=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
            if (user === undefined) throw new HttpError(403, 'no user cookie');
            return [user];
          },
        }),
      );
      const streams = await listen(app);
      try {
        await context.addCookies([{ name: 'user', value: 'tug', domain: '127.0.0.1', path: '/' }]);
        const withSseJs = server.page(
          'credentials',
          htmlPage({ scripts: ['sse.js'], bodyAttrs: `sse-data="${streams.url}/sse/"`, body: RECORDER }),
        );
        const page = await open(withSseJs);
        await waitFor(() => streamHub.stats().connections === 1, { what: 'the cross-origin stream' });
        await streamHub.sendEvent('message', { type: 'message', to: 'tug' }, 'tug');
        await waitSeen(page, 'dom', 'sse.message');
        expect((await seen(page)).find((e) => e.name === 'sse.message')?.msg).toEqual({ type: 'message', to: 'tug' });
        expect(cookies).toEqual(['user=tug']);
        expect(errors).toEqual([]);

        // Control: the same request without withCredentials carries no cookie.
        const bare = server.page(
          'no-credentials',
          `<!doctype html><body><script>window.es = new EventSource(${JSON.stringify(`${streams.url}/sse/`)});</script></body>`,
        );
        const barePage = await context.newPage();
        await barePage.goto(bare);
        await waitFor(() => cookies.length === 2, { what: 'the bare EventSource request' });
        expect(cookies[1]).toBeUndefined();
      } finally {
        await streamHub.close();
        await streams.close();
      }
    });
  });
});
