// Tab sharing in sse.js, in real headless Chromium over
// HTTP/1.1: the tabs of one origin (one browser context) elect a leader with
// Web Locks; only the leader holds an EventSource and fans messages out over
// BroadcastChannel. 8 tabs → 1 connection, every tab gets every event, and a
// plain fetch is not stuck behind Chromium's 6 sockets per host; closing the
// leader hands the stream over within 2 s with nothing lost (history on);
// different stream URLs, sse-share="off" and browsers without the APIs each
// keep a stream per tab.
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { CHROMIUM_PATH, htmlPage, launchChromium, PageServer, pageErrors } from '../helpers/chromium';
import { describeWithTools } from '../helpers/require-tool';
import { waitFor } from '../helpers/wait-for';

interface Seen {
  name: string;
  msg: unknown;
  t: number;
}

interface SseHubHandle {
  shared: boolean;
  leader: boolean;
  source: unknown;
  lastEventId: string | null;
  close(): void;
}

/** What the test pages add to window (other suites declare window.seen differently, so no global declaration). */
type TabWindow = Omit<Window, 'seen' | 'sseHub'> & { seen: Seen[]; sseHub: SseHubHandle };
declare const window: TabWindow;

/** Records every sse.* event the tests look at, with the page's clock. */
const RECORDER = `<script>
window.seen = [];
['sse.open', 'sse.error', 'sse.message', 'sse.foo'].forEach(function (name) {
  document.body.addEventListener(name, function (e) { seen.push({ name: e.type, msg: e.detail, t: Date.now() }); });
});
</script>`;

/** Chromium's limit of HTTP/1.1 connections per host (per browser profile / context). */
const SOCKETS_PER_HOST = 6;
/** The bound for a new leader to have the stream open again. */
const TAKEOVER_BOUND_MS = 2000;

describeWithTools([CHROMIUM_PATH], 'sse.js tab sharing in headless Chromium', () => {
  let browser: Browser;
  let server: PageServer;
  let context: BrowserContext;
  let errors: string[][];

  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });
  beforeEach(async () => {
    server = new PageServer({ hub: { history: true } });
    await server.start();
    context = await browser.newContext();
    errors = [];
  });
  afterEach(async () => {
    await context?.close();
    await server?.stop();
  });

  const connections = (): number => server.hub.stats().connections;
  const page = (name: string, bodyAttrs: string): string =>
    server.page(name, htmlPage({ scripts: ['sse.js'], bodyAttrs, body: RECORDER }));

  async function openTab(url: string, setup?: (p: Page) => Promise<void>): Promise<Page> {
    const tab = await context.newPage();
    errors.push(pageErrors(tab));
    if (setup) await setup(tab);
    await tab.goto(url);
    await tab.waitForFunction(() => window.seen.some((e) => e.name === 'sse.open'), undefined, { timeout: 10_000 });
    return tab;
  }

  async function openTabs(n: number, url: string, setup?: (p: Page) => Promise<void>): Promise<Page[]> {
    const tabs: Page[] = [];
    for (let i = 0; i < n; i++) tabs.push(await openTab(url, setup));
    return tabs;
  }

  const handle = (tab: Page): Promise<{ shared: boolean; leader: boolean; hasSource: boolean }> =>
    tab.evaluate(() => ({
      shared: window.sseHub.shared,
      leader: window.sseHub.leader,
      hasSource: window.sseHub.source !== null,
    }));

  /** The payloads of sse.message in a tab, in arrival order. */
  const messages = (tab: Page): Promise<unknown[]> =>
    tab.evaluate(() => window.seen.filter((e) => e.name === 'sse.message').map((e) => e.msg));

  async function waitMessages(tabs: Page[], n: number, timeout = 10_000): Promise<void> {
    await Promise.all(
      tabs.map((tab) =>
        tab.waitForFunction((k) => window.seen.filter((e) => e.name === 'sse.message').length >= k, n, { timeout }),
      ),
    );
  }

  /** A plain fetch from the tab, with a deadline: its time in ms, or 'timed out'. */
  const timedFetch = (tab: Page, deadline: number): Promise<number | 'timed out'> =>
    tab.evaluate(async (ms) => {
      const start = performance.now();
      try {
        const res = await fetch(`/static/sse-hub/sse.js?nocache=${Math.random()}`, {
          cache: 'no-store',
          signal: AbortSignal.timeout(ms),
        });
        await res.text();
        return performance.now() - start;
      } catch {
        return 'timed out' as const;
      }
    }, deadline);

  const publish = (n: number, from = 1): Promise<unknown> =>
    (async () => {
      for (let i = from; i < from + n; i++) await server.hub.sendEvent('message', { type: 'message', n: i }, 'all');
    })();
  const expected = (to: number, from = 1): unknown[] =>
    Array.from({ length: to - from + 1 }, (_, i) => ({ type: 'message', n: from + i }));

  test('8 tabs of one origin: 1 connection at the server, every tab gets every event, and fetch is not queued behind SSE', async () => {
    const tabs = await openTabs(8, page('eight', 'sse-data="/sse/?channels=all"'));
    await waitFor(() => connections() === 1, { what: 'one connection for 8 tabs' });
    const handles = await Promise.all(tabs.map(handle));
    expect(handles.every((h) => h.shared)).toBe(true);
    expect(handles.filter((h) => h.leader)).toEqual([{ shared: true, leader: true, hasSource: true }]);
    expect(handles.filter((h) => !h.leader && !h.hasSource)).toHaveLength(7);

    await publish(20);
    await waitMessages(tabs, 20);
    for (const tab of tabs) expect(await messages(tab)).toEqual(expected(20));

    // Chromium would queue this behind 6 open streams (the control below); with one shared stream it goes at once.
    const times = await Promise.all(tabs.map((tab) => timedFetch(tab, 2000)));
    expect(times.every((t) => typeof t === 'number')).toBe(true);
    console.log(`fetch from each of 8 sharing tabs (ms): ${times.map((t) => Math.round(t as number)).join(', ')}`);
    expect(connections()).toBe(1);
    expect(errors.flat()).toEqual([]);
  });

  test(`control: with sse-share="off", ${SOCKETS_PER_HOST} tabs hold every socket and a fetch waits`, async () => {
    const tabs = await openTabs(SOCKETS_PER_HOST, page('unshared', 'sse-data="/sse/?channels=all" sse-share="off"'));
    await waitFor(() => connections() === SOCKETS_PER_HOST, { what: `${SOCKETS_PER_HOST} connections` });
    expect((await Promise.all(tabs.map(handle))).every((h) => !h.shared && h.leader && h.hasSource)).toBe(true);
    expect(await timedFetch(tabs[0]!, 1500)).toBe('timed out');
    // Closing one stream frees a socket and the fetch goes through.
    await tabs[0]!.evaluate(() => window.sseHub.close());
    await waitFor(() => connections() === SOCKETS_PER_HOST - 1, { what: 'one stream to close' });
    expect(typeof (await timedFetch(tabs[1]!, 2000))).toBe('number');
  });

  test('closing the leader: another tab has the stream open within 2 s, every remaining tab gets every event once, in order', async () => {
    const tabs = await openTabs(5, page('handover', 'sse-data="/sse/?channels=all"'));
    await waitFor(() => connections() === 1, { what: 'one shared connection' });
    await publish(5);
    await waitMessages(tabs, 5);

    const leaders = await Promise.all(tabs.map(async (tab) => (await handle(tab)).leader));
    const leader = tabs[leaders.indexOf(true)]!;
    const rest = tabs.filter((tab) => tab !== leader);
    const closedAt = Date.now();
    await leader.close();
    // Published while the stream changes hands (the new leader may or may not be connected yet; see the next test).
    await publish(10, 6);
    await waitFor(async () => (await Promise.all(rest.map(handle))).some((h) => h.leader), {
      timeout: 5000,
      what: 'a new leader',
    });
    // The new leader's stream is open when any remaining tab hears sse.open after the close.
    const reopened = await Promise.all(
      rest.map((tab) =>
        tab
          .waitForFunction((since) => window.seen.find((e) => e.name === 'sse.open' && e.t >= since)?.t, closedAt, {
            timeout: 5000,
          })
          .then((h) => h.jsonValue() as Promise<number>),
      ),
    );
    const takeover = Math.min(...reopened) - closedAt;
    await publish(5, 16);
    await waitMessages(rest, 20);
    for (const tab of rest) expect(await messages(tab)).toEqual(expected(20));
    await waitFor(() => connections() === 1, { what: 'one connection after the hand-over' });
    const newLeader = await Promise.all(rest.map(handle));
    expect(newLeader.filter((h) => h.leader)).toHaveLength(1);
    console.log(`leader closed → new leader's stream open: ${takeover} ms`);
    expect(takeover).toBeLessThan(TAKEOVER_BOUND_MS);
    expect(errors.flat()).toEqual([]);
  });

  test('events published while no tab holds the stream are replayed to the new leader from ?lastEventId=, once each, in order', async () => {
    const tabs = await openTabs(4, page('replay', 'sse-data="/sse/?channels=all"'));
    await waitFor(() => connections() === 1, { what: 'one shared connection' });
    await publish(5);
    await waitMessages(tabs, 5);
    const lastId = await tabs[0]!.evaluate(() => window.sseHub.lastEventId);
    expect(lastId).toMatch(/^\d+-\d+$/);

    // Hold the new leader's request until the events below are published, so they can only come from history.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let requestedAt = 0;
    const asked: string[] = [];
    await context.route(/\/sse\/\?.*lastEventId=/, async (route) => {
      requestedAt ||= Date.now();
      asked.push(new URL(route.request().url()).searchParams.get('lastEventId') ?? '');
      await gate;
      await route.continue();
    });
    const leaders = await Promise.all(tabs.map(async (tab) => (await handle(tab)).leader));
    const leader = tabs[leaders.indexOf(true)]!;
    const rest = tabs.filter((tab) => tab !== leader);
    const replayedBefore = server.hub.stats().eventsReplayed;
    const closedAt = Date.now();
    await leader.close();
    await waitFor(() => asked.length > 0, { what: 'the new leader to ask for the stream' });
    await waitFor(() => connections() === 0, { what: "the old leader's stream to end" });
    await publish(10, 6);
    release();
    await waitMessages(rest, 15);
    await publish(5, 16);
    await waitMessages(rest, 20);
    for (const tab of rest) expect(await messages(tab)).toEqual(expected(20));
    expect(asked).toEqual([lastId]);
    expect(server.hub.stats().eventsReplayed - replayedBefore).toBe(10);
    console.log(`leader closed → new leader asks for ?lastEventId=: ${requestedAt - closedAt} ms`);
    expect(requestedAt - closedAt).toBeLessThan(TAKEOVER_BOUND_MS);
    expect(errors.flat()).toEqual([]);
  });

  test('sseHub.close() in the leader hands the stream to another tab and stops that tab only', async () => {
    const tabs = await openTabs(3, page('close', 'sse-data="/sse/?channels=all"'));
    await waitFor(() => connections() === 1, { what: 'one shared connection' });
    await publish(2);
    await waitMessages(tabs, 2);
    const leaders = await Promise.all(tabs.map(async (tab) => (await handle(tab)).leader));
    const leader = tabs[leaders.indexOf(true)]!;
    const rest = tabs.filter((tab) => tab !== leader);
    await leader.evaluate(() => window.sseHub.close());
    await waitFor(async () => (await Promise.all(rest.map(handle))).filter((h) => h.leader).length === 1, {
      what: 'another tab to lead',
    });
    await publish(3, 3);
    await waitMessages(rest, 5);
    for (const tab of rest) expect(await messages(tab)).toEqual(expected(5));
    expect(await messages(leader)).toEqual(expected(2));
    expect(await handle(leader)).toEqual({ shared: true, leader: false, hasSource: false });
    await waitFor(() => connections() === 1, { what: 'one connection after close()' });
    expect(errors.flat()).toEqual([]);
  });

  test('tabs whose stream URLs differ do not share: 2 connections, each gets its own channels', async () => {
    const all = await openTab(page('all', 'sse-data="/sse/?channels=all"'));
    const foo = await openTab(page('foo', 'sse-data="/sse/?channels=all,foo"'));
    await waitFor(() => connections() === 2, { what: 'two connections' });
    expect(await handle(all)).toEqual({ shared: true, leader: true, hasSource: true });
    expect(await handle(foo)).toEqual({ shared: true, leader: true, hasSource: true });
    await server.hub.sendEvent('message', { type: 'foo', n: 1 }, 'foo');
    await publish(1);
    await waitMessages([all, foo], 1);
    await foo.waitForFunction(() => window.seen.some((e) => e.name === 'sse.foo'));
    expect(await all.evaluate(() => window.seen.filter((e) => e.name === 'sse.foo').length)).toBe(0);
    expect(await messages(all)).toEqual(expected(1));
    expect(await messages(foo)).toEqual(expected(1));
  });

  test('without Web Locks and BroadcastChannel every tab falls back to its own stream', async () => {
    const withoutApis = (p: Page): Promise<void> =>
      p
        .addInitScript(() => {
          Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined, configurable: true });
          delete (window as { BroadcastChannel?: unknown }).BroadcastChannel;
        })
        .then(() => undefined);
    const tabs = await openTabs(3, page('fallback', 'sse-data="/sse/?channels=all"'), withoutApis);
    await waitFor(() => connections() === 3, { what: 'a connection per tab' });
    expect((await Promise.all(tabs.map(handle))).every((h) => !h.shared && h.leader && h.hasSource)).toBe(true);
    await publish(3);
    await waitMessages(tabs, 3);
    for (const tab of tabs) expect(await messages(tab)).toEqual(expected(3));
    expect(errors.flat()).toEqual([]);
  });
});
