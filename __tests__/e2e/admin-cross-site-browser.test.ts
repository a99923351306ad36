// The admin dashboard without a token (sse-runserver --admin, loopback
// trust) in headless Chromium: its own page works — it polls, tails and
// publishes from the form — while a page of another site open in the same
// browser, which reaches loopback too, is refused when it calls the API
// (no-cors fetches and an EventSource on the tail), and the dashboard lists
// those refusals.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { CHROMIUM_PATH, launchChromium, pageErrors } from '../helpers/chromium';
import { describeWithTools } from '../helpers/require-tool';
import { startRunserver, type RunningServer } from '../helpers/run-cli';
import { SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

interface Refusal {
  kind: string;
  detail: string;
}

describeWithTools([CHROMIUM_PATH], 'admin dashboard without a token, and another site (Chromium)', () => {
  let server: RunningServer | undefined;
  let browser: Browser | undefined;
  let evil: http.Server | undefined;
  let evilUrl = '';
  const readers: SseReader[] = [];

  beforeAll(async () => {
    server = await startRunserver(['--admin']);
    const target = server.url;
    // Another site: its page calls the dashboard's API from the user's browser.
    const page = `<!doctype html><title>another site</title><script>
      const target = ${JSON.stringify(target)};
      window.attack = Promise.allSettled([
        fetch(target + '/_admin/api/stats', { mode: 'no-cors' }),
        fetch(target + '/_admin/api/channels', { mode: 'no-cors', credentials: 'include' }),
        new Promise((resolve) => {
          const tail = new EventSource(target + '/_admin/api/tail?channel=news');
          tail.onerror = () => { tail.close(); resolve('closed'); };
        }),
      ]).then(() => 'done');
    </script>`;
    evil = http.createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'text/html' }).end(page));
    await new Promise<void>((resolve) => evil?.listen(0, '127.0.0.1', resolve));
    // "localhost" is another site than "127.0.0.1", whatever the port.
    evilUrl = `http://localhost:${(evil.address() as AddressInfo).port}/`;
    browser = await launchChromium();
  });
  afterAll(async () => {
    for (const r of readers) r.close();
    await browser?.close();
    evil?.closeAllConnections();
    await new Promise((resolve) => (evil === undefined ? resolve(undefined) : evil.close(resolve)));
    await server?.stop();
  });

  const refusals = async (): Promise<Refusal[]> => {
    const res = await fetch(`${server!.url}/_admin/api/stats`);
    return ((await res.json()) as { refusals: Refusal[] }).refusals;
  };

  test("regression: another site's page is refused with 403 on every API call (stats, channels, the tail)", async () => {
    const page = await browser!.newPage();
    try {
      await page.goto(evilUrl);
      expect(await page.evaluate(() => (window as unknown as { attack: Promise<string> }).attack)).toBe('done');
      const refused = (await refusals()).filter((r) => /refuses a web page of another site/.test(r.detail));
      expect(refused.map((r) => r.detail.split(' from ')[0]).sort()).toEqual([
        'GET /channels', // api/channels is /channels' handler
        'admin /api/stats',
        'admin /api/tail',
      ]);
      expect(refused.every((r) => r.kind === 'forbidden')).toBe(true);
    } finally {
      await page.close();
    }
  });

  test('its own page still works: no login, polls, tails and publishes from the form', async () => {
    const client = await SseReader.open(`${server!.url}/?channels=news`);
    readers.push(client);
    const page = await browser!.newPage();
    const errors = pageErrors(page);
    try {
      await page.goto(`${server!.url}/_admin/`);
      await page.locator('#dashboard').waitFor({ state: 'visible' });
      expect(await page.locator('#login').isVisible()).toBe(false);
      const row = page.locator('#channels tbody tr[data-channel="news"]');
      await row.waitFor();
      await row.click();
      await page.locator('#tail-status', { hasText: 'live' }).waitFor();
      await page.fill('#publish-channel', 'news');
      await page.fill('#publish-data', '"from the dashboard"');
      await page.click('#publish-form button[type=submit]');
      await page.locator('#publish-result', { hasText: /^sent at / }).waitFor();
      await page.locator('#tail li pre', { hasText: 'from the dashboard' }).waitFor();
      expect((await client.waitForEvents(1))[0]).toMatchObject({ data: 'from the dashboard' });
      // The dashboard lists what the other site was refused.
      await page.locator('#refusals li', { hasText: 'refuses a web page of another site' }).first().waitFor();
      await waitFor(async () => (await refusals()).length > 0);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
