// The admin dashboard in headless Chromium against the real sse-runserver
// --admin: without the token only a login prompt; logged in, a channel
// appears when a client connects, an event published from the form shows in
// the tail (as text, never HTML), and the count drops when the client leaves.
// The screenshot in docs/operations.md (docs/admin.png) is taken here, and
// written there only with UPDATE_SCREENSHOTS=1 (else to a temp file).
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM_PATH, launchChromium, pageErrors } from '../helpers/chromium';
import { describeWithTools } from '../helpers/require-tool';
import { ROOT, startRunserver, type RunningServer } from '../helpers/run-cli';
import { SseReader } from '../helpers/sse-reader';

const SCREENSHOT =
  process.env.UPDATE_SCREENSHOTS === '1'
    ? join(ROOT, 'docs', 'admin.png')
    : join(mkdtempSync(join(tmpdir(), 'sse-hub-shot-')), 'admin.png');
const TOKEN = 'correct-horse-battery';

describeWithTools([CHROMIUM_PATH], 'admin dashboard (sse-runserver --admin + Chromium)', () => {
  let server: RunningServer | undefined;
  let browser: Browser | undefined;
  let readers: SseReader[] = [];

  beforeAll(async () => {
    server = await startRunserver(['--path', '/sse/', '--admin', '--admin-token', TOKEN, '--history', '50']);
    browser = await launchChromium();
  });
  afterEach(() => {
    for (const reader of readers) reader.close();
    readers = [];
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  async function subscribe(channels: string): Promise<SseReader> {
    const reader = await SseReader.open(`${server!.url}/sse/?channels=${channels}`);
    readers.push(reader);
    expect(reader.status).toBe(200);
    return reader;
  }
  const row = (page: Page, channel: string) => page.locator(`#channels tbody tr[data-channel="${channel}"]`);

  test('without the token: a login prompt and nothing else; a wrong token stays there', async () => {
    await subscribe('early-bird');
    const page = await browser!.newPage();
    const errors = pageErrors(page);
    try {
      await page.goto(`${server!.url}/_admin/`);
      await page.locator('#login').waitFor({ state: 'visible' });
      expect(await page.locator('#dashboard').isVisible()).toBe(false);
      const text = await page.locator('body').innerText();
      expect(text).not.toMatch(/early-bird|memory/);
      await page.fill('#token', 'not-the-token');
      await page.click('#login button[type=submit]');
      await page.locator('#login-message', { hasText: 'Wrong token.' }).waitFor();
      expect(await page.locator('#dashboard').isVisible()).toBe(false);
      expect(errors.filter((e) => !/401/.test(e))).toEqual([]);
    } finally {
      await page.close();
    }
  });

  test('logged in: a channel appears, an event published from the form shows in the tail as text, the count drops', async () => {
    const page = await browser!.newPage({ viewport: { width: 1200, height: 860 } });
    const errors = pageErrors(page);
    try {
      await page.goto(`${server!.url}/_admin/`);
      await page.fill('#token', TOKEN);
      await page.click('#login button[type=submit]');
      await page.locator('#dashboard').waitFor({ state: 'visible' });
      await page.locator('#broker', { hasText: 'memory · up' }).waitFor();

      // A client connects: its channel appears with one subscriber.
      const client = await subscribe('orders');
      await subscribe('orders,all');
      await subscribe('all');
      await row(page, 'orders').locator('.subs', { hasText: '2' }).waitFor();

      // Tail it, then publish from the form: the tail shows the data as text.
      await row(page, 'orders').click();
      await page.locator('#tail-status', { hasText: 'live' }).waitFor();
      await page.fill('#publish-channel', 'orders');
      await page.fill('#publish-event', 'order');
      await page.fill('#publish-data', '{"id": 42, "note": "<b>shipped</b><img src=x onerror=alert(1)>"}');
      await page.click('#publish-form button[type=submit]');
      await page.locator('#publish-result', { hasText: /^sent as #/ }).waitFor();
      const item = page.locator('#tail li').first();
      await item.locator('pre', { hasText: '<b>shipped</b>' }).waitFor();
      expect(await item.locator('.kind').innerText()).toBe('order');
      expect(await page.locator('#tail b, #tail img').count()).toBe(0);
      // The subscriber got it too: the tail shows what subscribers get.
      expect((await client.waitForEvents(1))[0]).toMatchObject({ event: 'order' });
      // Its history size is on the row once the next poll ran.
      await row(page, 'orders').locator('.history', { hasText: '1' }).waitFor();

      // A refused request shows under refusals.
      await fetch(`${server!.url}/channels`, { headers: { Authorization: 'Bearer wrong' } });
      await page.locator('#refusals li', { hasText: 'GET /channels from 127.0.0.1' }).waitFor();

      mkdirSync(dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      expect(readFileSync(SCREENSHOT).subarray(1, 4).toString()).toBe('PNG');

      // The client leaves: the count drops.
      client.close();
      await row(page, 'orders').locator('.subs', { hasText: '1' }).waitFor();
      readers[readers.length - 2]?.close();
      await row(page, 'orders').waitFor({ state: 'detached' });
      expect(errors.filter((e) => !/401/.test(e))).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
