// examples/django, started with its one command (`node examples/django/start.js`):
// a real Django 3.2 app (Debian's python3-django, python3-redis, python3-jwt)
// next to `sse-runserver --channels token --redis`, driven in headless
// Chromium. alice and bob log in through Django's login form in their own
// browser contexts; a Message saved in Django's shell for alice (post_save →
// django_sse's send_event) shows on alice's page only; one for everyone on
// both; pages outlive their 6-second tokens; logging out deletes the cookie,
// and once the token expires bob's stream ends and his old token is refused.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { CHROMIUM_PATH, launchChromium, pageErrors } from '../helpers/chromium';
import { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { cleanEnv, ROOT } from '../helpers/run-cli';
import { waitFor } from '../helpers/wait-for';

const EXAMPLE = join(ROOT, 'examples', 'django');
const PYTHON = '/usr/bin/python3';
/** Token lifetime, in seconds: short, so that tokens expire during the test. */
const TTL = 6;

interface Example {
  url: string;
  sseUrl: string;
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

async function startExample(env: NodeJS.ProcessEnv): Promise<Example> {
  const proc: ChildProcess = spawn(process.execPath, [join(EXAMPLE, 'start.js')], {
    env,
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
      return /django example: listening on (http:\S+?)\/ [\s\S]*token at (http:\S+)/.exec(output) ?? undefined;
    },
    { timeout: 60_000, what: 'the Django example to listen' },
  );
  return {
    url: match[1] as string,
    sseUrl: match[2]?.replace(/,$/, '') as string,
    env,
    async stop() {
      if (!exited) proc.kill('SIGTERM');
      await gone;
    },
  };
}

describeWithTools(['redis-server', CHROMIUM_PATH, PYTHON], 'examples/django in headless Chromium', () => {
  let redis: RedisServer;
  let browser: Browser;
  let example: Example;
  let dir: string;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sse-django-e2e-'));
    redis = await RedisServer.start();
    browser = await launchChromium();
    example = await startExample({
      ...cleanEnv(),
      REDIS_URL: redis.url,
      PORT: '0',
      SSE_WORKERS: '1',
      SSE_TOKEN_TTL: String(TTL),
      SSE_TOKEN_SECRET: 'django-e2e-secret-of-at-least-32-bytes',
      DJANGO_DB: join(dir, 'db.sqlite3'),
    });
  }, 90_000);
  afterAll(async () => {
    for (const context of contexts) await context.close();
    await example?.stop();
    await browser?.close();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Saves Messages from Django's shell, a process of its own: the post_save
   * signal publishes each one. One process for several messages: its ~1 s
   * start-up stays well inside a token's lifetime.
   */
  function saveMessages(...messages: [owner: string | null, text: string][]): void {
    const code = [
      'from django.contrib.auth.models import User',
      'from board.models import Message',
      ...messages.map(([owner, text]) => {
        const who = owner === null ? 'None' : `User.objects.get(username='${owner}')`;
        return `Message.objects.create(owner=${who}, text=${JSON.stringify(text)})`;
      }),
    ].join('\n');
    const result = spawnSync(PYTHON, [join(EXAMPLE, 'manage.py'), 'shell', '-c', code], {
      env: example.env,
      encoding: 'utf8',
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  }

  interface Session {
    name: string;
    page: Page;
    errors: string[];
    context: BrowserContext;
    /** Streams the page opened (200 from sse-runserver) so far. */
    opens(): number;
  }

  async function loggedIn(user: string): Promise<Session> {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    const errors = pageErrors(page);
    let opens = 0;
    page.on('response', (res) => {
      if (res.url().startsWith(example.sseUrl) && !res.url().includes('/static/') && res.status() === 200) opens += 1;
    });
    await page.goto(`${example.url}/`);
    await page.fill('#login [name=username]', user);
    await page.fill('#login [name=password]', user);
    await page.click('#login button');
    await page.waitForSelector(`#user:text-is("${user}")`);
    await page.waitForSelector('body[data-stream=open]', { timeout: 10_000 });
    return { name: user, page, errors, context, opens: () => opens };
  }

  const messages = (page: Page): Promise<string[]> => page.locator('#messages li').allTextContents();
  const subscribed = (channel: string): Promise<boolean> =>
    waitFor(async () => (await redis.numsub(channel)) > 0, { timeout: 10_000, what: `a subscriber on ${channel}` });

  /**
   * Waits until each page has just reconnected with a fresh token and listens
   * again, so what is published next lands well inside the new token's
   * lifetime, not in the moment between two streams (pub/sub keeps nothing).
   */
  async function freshStreams(...users: Session[]): Promise<void> {
    const before = users.map((u) => u.opens());
    await waitFor(() => users.every((u, i) => u.opens() > (before[i] as number)), {
      timeout: (TTL + 5) * 1000,
      what: 'the pages to reconnect with fresh tokens',
    });
    for (const user of users) await subscribed(user.name);
  }

  test('two users, their own messages, messages for all, token refresh, and logout + expiry ending access', async () => {
    const alice = await loggedIn('alice');
    const bob = await loggedIn('bob');

    // Both tokens expire, and sse.js fetches new ones from Django's token view and reconnects.
    await freshStreams(alice, bob);
    saveMessages(['alice', 'for alice <only>'], [null, 'to everyone']);
    await alice.page.waitForSelector('#messages li:text-is("to everyone")');
    await bob.page.waitForSelector('#messages li:text-is("to everyone")');
    // Each stream delivers in publish order: had alice's message reached bob, it would be there by now.
    expect(await messages(alice.page)).toEqual(['for alice <only>', 'to everyone']);
    expect(await messages(bob.page)).toEqual(['to everyone']);

    // bob logs out (in the background, as from another tab): Django deletes the token cookie.
    const oldToken = (await bob.context.cookies()).find((c) => c.name === 'sse_token')?.value as string;
    expect(oldToken).toMatch(/^ey/);
    const status = await bob.page.evaluate(async () => {
      const form = document.querySelector('form[action="/logout/"]') as HTMLFormElement;
      return (await fetch(form.action, { method: 'POST', body: new FormData(form) })).status;
    });
    expect(status).toBe(200); // followed the redirect to the login page
    expect((await bob.context.cookies()).map((c) => c.name)).not.toContain('sse_token');

    // At the token's expiry the stream ends; the refresh is refused: bob's page stops for good.
    await bob.page.waitForSelector('body[data-stream=closed]', { timeout: (TTL + 5) * 1000 });
    await waitFor(async () => (await redis.numsub('bob')) === 0, { what: 'nobody listening on bob' });
    await freshStreams(alice);
    saveMessages(['bob', 'for bob, after logout'], [null, 'to everyone, after logout']);
    await alice.page.waitForSelector('#messages li:text-is("to everyone, after logout")');
    expect(await messages(alice.page)).toEqual(['for alice <only>', 'to everyone', 'to everyone, after logout']);
    expect(await messages(bob.page)).toEqual(['to everyone']);

    // And the token bob had is refused by sse-runserver now that it has expired.
    const refused = await fetch(example.sseUrl, { headers: { cookie: `sse_token=${oldToken}` } });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ error: expect.stringMatching(/expired/) });
    expect([...alice.errors, ...bob.errors]).toEqual([]);
  }, 120_000);
});

describe('docs/django.md', () => {
  test('shows the three files of examples/django byte for byte', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'django.md'), 'utf8');
    const blocks = [...doc.matchAll(/<!-- file: (\S+) -->\s*\n```\w*\n([\s\S]*?)```/g)];
    expect(blocks.map((b) => b[1])).toEqual([
      'examples/django/board/sse.py',
      'examples/django/board/models.py',
      'examples/django/board/templates/board/page.html',
    ]);
    for (const [, file, code] of blocks) {
      expect({ file, code }).toEqual({ file, code: readFileSync(join(ROOT, file as string), 'utf8') });
    }
  });
});
