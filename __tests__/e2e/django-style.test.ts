// examples/django-style started with its one command
// (`node examples/django-style/start.js`, and `--in-process`), driven in
// headless Chromium. admin and bob log in through the form in their own
// browser contexts; a record saved for admin (TypeORM afterInsert → sendEvent)
// shows on admin's page only; a django_sse-style PUBLISH to `all` shows on
// both; the anonymous page's stream is refused (403) and shows nothing.
// admin's page is the README's screenshot (docs/django-style.png): written
// there with UPDATE_SCREENSHOTS=1 (so a test run leaves the tree clean), else
// to a temp file, and checked to be a PNG either way.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { CHROMIUM_PATH, launchChromium, pageErrors } from '../helpers/chromium';
import { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { cleanEnv, ROOT } from '../helpers/run-cli';
import { waitFor } from '../helpers/wait-for';

const START = join(ROOT, 'examples', 'django-style', 'start.js');
const SCREENSHOT =
  process.env.UPDATE_SCREENSHOTS === '1'
    ? join(ROOT, 'docs', 'django-style.png')
    : join(mkdtempSync(join(tmpdir(), 'sse-hub-shot-')), 'django-style.png');

interface Example {
  proc: ChildProcess;
  url: string;
  output(): string;
  stop(): Promise<void>;
}

/** Runs the example's one command and waits for its "listening on" line. */
async function startExample(args: string[], env: NodeJS.ProcessEnv): Promise<Example> {
  const proc = spawn(process.execPath, [START, ...args], {
    env: { ...cleanEnv(), PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let exited = false;
  proc.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  proc.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  void gone.then(() => (exited = true));
  const match = await waitFor(
    () => {
      if (exited) throw new Error(`the example exited early:\n${output}`);
      return /example \([\w-]+\): listening on (http:\/\/[\d.:]+)\//.exec(output) ?? undefined;
    },
    { timeout: 20_000, what: 'the django-style example to listen' },
  );
  return {
    proc,
    url: match[1] as string,
    output: () => output,
    async stop() {
      if (!exited) proc.kill('SIGTERM');
      await gone;
    },
  };
}

describeWithTools(['redis-server', CHROMIUM_PATH], 'examples/django-style in headless Chromium', () => {
  let redis: RedisServer;
  let browser: Browser;

  beforeAll(async () => {
    redis = await RedisServer.start();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await redis?.stop();
  });

  describe.each([
    ['sse-runserver --channels session as a second process', []],
    ['sseMiddleware() in the app', ['--in-process']],
  ])('%s', (_name, args) => {
    let example: Example;
    const contexts: BrowserContext[] = [];

    beforeAll(async () => {
      example = await startExample(args, { REDIS_URL: redis.url, SESSION_SECRET: 'e2e-secret' });
    });
    afterAll(async () => {
      await example?.stop();
    });
    afterEach(async () => {
      for (const context of contexts.splice(0)) await context.close();
    });

    async function newPage(): Promise<{ page: Page; errors: string[]; streams: number[] }> {
      const context = await browser.newContext();
      contexts.push(context);
      const page = await context.newPage();
      const errors = pageErrors(page);
      const streams: number[] = [];
      page.on('response', (res) => {
        if (new URL(res.url()).pathname === '/sse/') streams.push(res.status());
      });
      await page.goto(`${example.url}/`);
      return { page, errors, streams };
    }

    async function loggedIn(user: string): Promise<{ page: Page; errors: string[] }> {
      const { page, errors } = await newPage();
      await page.fill('#login [name=username]', user);
      await page.fill('#login [name=password]', user);
      await page.click('#login button');
      await page.waitForSelector(`#user:text-is("${user}")`);
      await page.waitForSelector('body[data-stream=open]', { timeout: 10_000 });
      return { page, errors };
    }

    const messages = (page: Page): Promise<string[]> => page.locator('#messages li').allTextContents();

    test("admin's record shows on admin's page only; a PUBLISH to `all` on both; anonymous gets no stream", async () => {
      const anonymous = await newPage();
      const admin = await loggedIn('admin');
      const bob = await loggedIn('bob');

      // The anonymous page asked for /sse/ too, and was refused for good.
      await anonymous.page.waitForSelector('body[data-stream=closed]', { timeout: 10_000 });
      expect(anonymous.streams).toEqual([403]);

      // Saved through the page's form: the model's afterInsert hook sends it to admin's channel.
      await admin.page.selectOption('#post [name=owner]', 'admin');
      await admin.page.fill('#post [name=text]', 'for admin <only>');
      await admin.page.click('#post button');
      await admin.page.waitForSelector('#messages li:text-is("for admin <only>")');
      expect(await admin.page.getAttribute('body', 'data-saved')).toBe('201');

      // What a Django app's send_event('message', {...}, 'all') publishes.
      await waitFor(async () => (await redis.numsub('all')) > 0, { what: 'a subscriber on all' });
      const html = '<li class="message">to everyone</li>';
      await redis.publish('all', JSON.stringify(['message', JSON.stringify({ type: 'foo', html })]));

      await admin.page.waitForSelector('#messages li:text-is("to everyone")');
      await bob.page.waitForSelector('#messages li:text-is("to everyone")');
      // Each stream delivers in publish order: had admin's record reached bob, it would be there by now.
      expect(await messages(admin.page)).toEqual(['for admin <only>', 'to everyone']);
      expect(await messages(bob.page)).toEqual(['to everyone']);
      expect(await messages(anonymous.page)).toEqual([]);
      expect(anonymous.streams).toEqual([403]);
      expect([...admin.errors, ...bob.errors]).toEqual([]);

      // The styled page, as the README shows it (one of the two modes is enough).
      if (args.length === 0) {
        await admin.page.setViewportSize({ width: 820, height: 460 });
        await admin.page.screenshot({ path: SCREENSHOT });
        expect(readFileSync(SCREENSHOT).subarray(1, 4).toString()).toBe('PNG');
      }
    });
  });
});

// Regressions: the example's /sse/ proxy forwarded every path (sse-runserver's
// loopback-trusting /publish included), and the session secret was on the
// sse-runserver command line, where `ps` shows it to every local user.
describeWithTools(['redis-server'], 'examples/django-style: what reaches sse-runserver', () => {
  let redis: RedisServer;
  let example: Example;
  const SECRET = 'e2e-secret-not-in-argv';

  beforeAll(async () => {
    redis = await RedisServer.start();
    example = await startExample([], { REDIS_URL: redis.url, SESSION_SECRET: SECRET });
  });
  afterAll(async () => {
    await example?.stop();
    await redis?.stop();
  });

  test('only GET of the stream path is proxied: /sse/publish, /sse/healthz and POST /sse/ answer 404 from the app', async () => {
    const publish = await fetch(`${example.url}/sse/publish`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ channel: 'all', data: '<img src=x onerror=alert(1)>' }),
    });
    expect(publish.status).toBe(404);
    expect(await publish.json()).toEqual({ error: 'only the event stream is served under /sse/' });
    expect((await fetch(`${example.url}/sse/healthz`)).status).toBe(404);
    expect((await fetch(`${example.url}/sse/`, { method: 'POST' })).status).toBe(404);
    // The stream path itself still reaches sse-runserver (403: no session cookie).
    const stream = await fetch(`${example.url}/sse/?channels=all`);
    expect(stream.status).toBe(403);
    expect(await stream.json()).toEqual({ error: expect.stringMatching(/session cookie/) });
  });

  test("the session secret is not on sse-runserver's command line", () => {
    const children = readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .map((pid) => {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
          const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
          return { ppid, argv: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0') };
        } catch {
          return undefined; // the process ended meanwhile
        }
      })
      .filter((p) => p !== undefined && p.ppid === example.proc.pid && p.argv.some((a) => a.includes('sse-runserver')));
    expect(children).toHaveLength(1);
    expect(children[0]?.argv.join(' ')).toContain('--channels session');
    expect(children[0]?.argv.join(' ')).not.toContain(SECRET);
  });
});
