// Token mode and cross-origin streams in headless Chromium (docs/tokens.md):
// the page is served on one port, sse-hub's server on another. A listed
// origin's EventSource({ withCredentials: true }) gets the stream with the
// token cookie, an unlisted one is blocked by CORS; sse.js with sse-token-url
// survives token expiry (fresh token before each reconnect, by cookie or by
// JSON + ?token=) and stops for good once the user is logged out.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { SignJWT } from 'jose';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createServer, type SseServer } from '../../src/cli/server';
import { clientScripts } from '../../src/http/client-scripts';
import { fromToken, type TokenResolver } from '../../src/http/token';
import { CHROMIUM_PATH, JQUERIES, launchChromium, pageErrors } from '../helpers/chromium';
import { describeWithTools } from '../helpers/require-tool';
import { waitFor } from '../helpers/wait-for';

const SECRET = 'browser-test-secret-of-32-bytes!!';
/** Token lifetime the page's backend hands out, in seconds: short, so expiry happens during the test. */
const TTL = 2;

declare global {
  interface Window {
    got: string[];
    opens: number;
    refused: boolean;
  }
}

/** A site's backend: login/logout, a token endpoint (cookie or JSON), the page, jQuery and sse.js. */
async function startSite(
  streamUrl: () => string,
): Promise<{ url: string; tokensIssued: () => number; close(): Promise<void> }> {
  const app = express();
  let issued = 0;
  const userOf = (req: express.Request): string | undefined =>
    /(?:^|; )login=(\w+)/.exec(req.headers.cookie ?? '')?.[1];
  const tokenFor = (user: string): Promise<string> => {
    issued += 1;
    return new SignJWT({ channels: [user, 'all'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(user)
      .setExpirationTime(Math.floor(Date.now() / 1000) + TTL)
      .sign(new TextEncoder().encode(SECRET));
  };
  app.use('/static/sse-hub', clientScripts());
  app.get('/vendor/jquery.js', (_req, res) => res.sendFile(JQUERIES.jquery4));
  app.get('/login/:user', (req, res) => {
    res.cookie('login', req.params.user, { sameSite: 'lax' }).send('ok');
  });
  app.get('/logout', (_req, res) => {
    res.clearCookie('login').clearCookie('sse_token').send('bye');
  });
  // The sse-token-url: a fresh cookie for the logged-in user, 403 (and no cookie) for anyone else.
  app.get('/token', async (req, res) => {
    const user = userOf(req);
    if (user === undefined) return void res.clearCookie('sse_token').status(403).json({ error: 'log in' });
    res
      .cookie('sse_token', await tokenFor(user), { httpOnly: true, sameSite: 'lax' })
      .status(204)
      .end();
  });
  app.get('/token.json', async (req, res) => {
    const user = userOf(req);
    if (user === undefined) return void res.status(403).json({ error: 'log in' });
    res.set('Cache-Control', 'no-store').json({ token: await tokenFor(user) });
  });
  // The tornado-sse page, with the stream on the other port.
  app.get('/page', (req, res) => {
    const tokenUrl = typeof req.query.tokenUrl === 'string' ? req.query.tokenUrl : '/token';
    res.type('html').send(`<!doctype html><html><head><meta charset="utf-8">
<script src="/vendor/jquery.js"></script><script src="/static/sse-hub/sse.js"></script></head>
<body sse-data="${streamUrl()}/?channels=bob" sse-token-url="${tokenUrl}" sse-share="off">
<script>
window.got = []; window.opens = 0; window.refused = false;
$('body').on('sse.message', function (e, msg) { got.push(msg.text); });
$('body').on('sse.open', function () { opens += 1; });
$('body').on('sse.error', function (e, s) { if (s.readyState === 2) refused = true; });
</script></body></html>`);
  });
  // A page that uses EventSource directly, as any cross-origin page may.
  app.get('/plain', (_req, res) => {
    res.type('html').send(`<!doctype html><html><body><script>
window.got = []; window.opens = 0; window.refused = false;
var es = new EventSource('${streamUrl()}/?channels=bob', { withCredentials: true });
es.onopen = function () { opens += 1; };
es.onmessage = function (e) { got.push(JSON.parse(e.data).text); };
es.onerror = function () { if (es.readyState === 2) refused = true; };
</script></body></html>`);
  });
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    tokensIssued: () => issued,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describeWithTools([CHROMIUM_PATH], 'token mode and CORS in headless Chromium', () => {
  let browser: Browser;
  let sse: SseServer;
  let sseUrl: string;
  let resolver: TokenResolver;
  let site: Awaited<ReturnType<typeof startSite>>;
  let otherSite: Awaited<ReturnType<typeof startSite>>;
  let context: BrowserContext;

  beforeAll(async () => {
    browser = await launchChromium();
    site = await startSite(() => sseUrl);
    otherSite = await startSite(() => sseUrl);
    resolver = fromToken({ secrets: [SECRET] });
    // History on: the reconnect after an expiry resumes from the last id, so nothing published in the gap is lost.
    sse = createServer({
      channels: resolver,
      corsOrigins: [site.url],
      hubOptions: { broker: 'memory', retry: 250, history: { size: 100 } },
    });
    const address = await sse.listen(0);
    sseUrl = `http://127.0.0.1:${address.port}`;
  });
  afterAll(async () => {
    await browser?.close();
    await sse?.close();
    await site?.close();
    await otherSite?.close();
  });
  beforeEach(async () => {
    context = await browser.newContext();
  });
  afterEach(async () => {
    await context?.close();
    await waitFor(() => sse.hub.stats().connections === 0, { what: 'every stream to close' });
  });

  async function open(url: string): Promise<{ page: Page; errors: string[] }> {
    const page = await context.newPage();
    const errors = pageErrors(page);
    await page.goto(url);
    return { page, errors };
  }

  const got = (page: Page): Promise<string[]> => page.evaluate(() => window.got);
  const send = (text: string): Promise<unknown> => sse.hub.sendEvent('message', { text }, 'bob');
  const listening = (n = 1): Promise<boolean> =>
    waitFor(() => sse.hub.stats().connections === n, { timeout: 10_000, what: `${n} open stream(s)` });

  test('a page on a listed origin gets the stream cross-origin with its cookie; an unlisted origin is blocked', async () => {
    const allowed = await open(`${site.url}/login/bob`);
    // Sets the token cookie, for 127.0.0.1 on any port (cookies ignore ports).
    await allowed.page.evaluate(() => fetch('/token'));
    await allowed.page.goto(`${site.url}/plain`);
    await allowed.page.waitForFunction(() => window.opens > 0);
    await listening();
    await send('cross-origin hello');
    await allowed.page.waitForFunction(() => window.got.length > 0);
    expect(await got(allowed.page)).toEqual(['cross-origin hello']);

    // Same cookie jar, same server, but the page's origin is not listed: CORS blocks it for good.
    const blocked = await open(`${otherSite.url}/plain`);
    await blocked.page.waitForFunction(() => window.refused, undefined, { timeout: 10_000 });
    expect(await blocked.page.evaluate(() => window.opens)).toBe(0);
    expect(blocked.errors.join('\n')).toMatch(/CORS policy/);
    expect(allowed.errors).toEqual([]);
  });

  test.each([
    ['a fresh cookie', '/token'],
    ['a JSON token sent as ?token=', '/token.json'],
  ])('sse-token-url (%s): the page outlives its tokens, and stops once logged out', async (_how, tokenUrl) => {
    const { page, errors } = await open(`${site.url}/login/bob`);
    const issuedBefore = site.tokensIssued();
    const expiredBefore = resolver.counters.expired;
    await page.goto(`${site.url}/page?tokenUrl=${encodeURIComponent(tokenUrl)}`);
    await page.waitForFunction(() => window.opens === 1);
    await listening();
    await send('before expiry');
    await page.waitForFunction(() => window.got.length === 1);

    // The server ends the stream at exp; sse.js fetches a new token and reconnects.
    await waitFor(() => resolver.counters.expired > expiredBefore, {
      timeout: (TTL + 2) * 1000,
      what: 'the token to expire',
    });
    await page.waitForFunction(() => window.opens >= 2, undefined, { timeout: 10_000 });
    await listening();
    await send('after expiry');
    await page.waitForFunction(() => window.got.length === 2);
    expect(await got(page)).toEqual(['before expiry', 'after expiry']);
    expect(site.tokensIssued() - issuedBefore).toBeGreaterThanOrEqual(2);
    expect(await page.evaluate(() => window.refused)).toBe(false);

    // Logged out: the open stream runs to its exp, the refresh is refused, and the page stops for good.
    await page.evaluate(() => fetch('/logout'));
    await page.waitForFunction(() => window.refused, undefined, { timeout: (TTL + 5) * 1000 });
    await listening(0);
    await send('after logout');
    expect(await got(page)).toEqual(['before expiry', 'after expiry']);
    expect(sse.hub.stats().connections).toBe(0);
    expect(errors).toEqual([]);
  });
});
