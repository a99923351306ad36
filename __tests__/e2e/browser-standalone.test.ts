// examples/standalone run as its README says: the real
// sse-runserver serving the page and the client scripts, the real sse-send
// publishing, headless Chromium showing the events; the screenshot in the
// README (docs/standalone.png) is taken here. It is written there with
// UPDATE_SCREENSHOTS=1 (so a test run leaves the work tree clean), else to
// a temp file, and checked to be a PNG either way.
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM_PATH, launchChromium, pageErrors } from '../helpers/chromium';
import { describeWithTools } from '../helpers/require-tool';
import { ROOT, runSend, startRunserver, type RunningServer } from '../helpers/run-cli';

const EXAMPLE = join(ROOT, 'examples', 'standalone');
const SCREENSHOT =
  process.env.UPDATE_SCREENSHOTS === '1'
    ? join(ROOT, 'docs', 'standalone.png')
    : join(mkdtempSync(join(tmpdir(), 'sse-hub-shot-')), 'standalone.png');

describeWithTools([CHROMIUM_PATH], 'examples/standalone (sse-runserver + sse-send + Chromium)', () => {
  let server: RunningServer | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    // Line 1 of the example's README, on a free port instead of 8888.
    server = await startRunserver(['--path', '/sse/', '--static', EXAMPLE]);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  const items = (page: Page): Promise<string[]> => page.locator('#events li').allInnerTexts();

  test('the page shows what sse-send publishes; screenshot to docs/standalone.png', async () => {
    const page = await browser!.newPage({ viewport: { width: 820, height: 560 } });
    const errors = pageErrors(page);
    try {
      await page.goto(`${server!.url}/`);
      await page.locator('#status.open').waitFor({ timeout: 10_000 });

      // Line 2 of the README, and two more like the tornado-sse README's.
      const sends: [string, string, string][] = [
        ['all', 'message', '{"type":"message","user":"tug","text":"Hello from sse-send"}'],
        ['foo', 'message', '{"type":"foo","user":"bar","html":"<b>order 42 shipped</b>"}'],
        ['all', 'message', 'plain text is passed as a string'],
      ];
      for (const args of sends) {
        const result = await runSend(['--server', server!.url, ...args]);
        expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
        await page.waitForFunction((n) => document.querySelectorAll('#events li').length >= n, sends.indexOf(args) + 1);
      }

      const shown = await items(page);
      expect(shown).toHaveLength(3);
      // Newest first.
      expect(shown[0]).toMatch(/^sse\.message[\s\S]*plain text is passed as a string/);
      expect(shown[1]).toMatch(/^sse\.foo[\s\S]*"html": "<b>order 42 shipped<\/b>"/);
      expect(shown[2]).toMatch(/^sse\.message[\s\S]*"text": "Hello from sse-send"/);
      expect(errors).toEqual([]);

      mkdirSync(dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT });
      expect(readFileSync(SCREENSHOT).subarray(1, 4).toString()).toBe('PNG');
    } finally {
      await page.close();
    }
  });
});
