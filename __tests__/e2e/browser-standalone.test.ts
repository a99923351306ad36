// examples/standalone run as its README says (issue 3 item 7): the real
// sse-runserver serving the page and the client scripts, the real sse-send
// publishing, headless Chromium showing the events; the screenshot in the
// README (docs/standalone.png) is taken here.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM_PATH, launchChromium, pageErrors } from '../helpers/chromium';
import { describeWithTools } from '../helpers/require-tool';
import { ROOT, runSend, startRunserver, type RunningServer } from '../helpers/run-cli';

const EXAMPLE = join(ROOT, 'examples', 'standalone');
const SCREENSHOT = join(ROOT, 'docs', 'standalone.png');

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

      mkdirSync(join(ROOT, 'docs'), { recursive: true });
      await page.screenshot({ path: SCREENSHOT });
    } finally {
      await page.close();
    }
  });
});
