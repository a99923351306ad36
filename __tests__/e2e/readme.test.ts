// The examples of the README and docs/ are run, not just read: every block
// marked `<!-- file: X -->` must equal file X, which the tests below execute,
// every `<!-- run: redis-cli -->` block is run against a real Redis, and the
// flag table of docs/cli.md must be the one --help prints.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { flagsMarkdown, RUNSERVER_FLAGS } from '../../src/cli/flags';
import { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { cleanEnv, ROOT, startRunserver, type RunningServer } from '../helpers/run-cli';
import { SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const DOCS = readdirSync(join(ROOT, 'docs'))
  .filter((name) => name.endsWith('.md'))
  .map((name) => `docs/${name}`);
const PAGES = ['README.md', ...DOCS].map((page) => ({ page, text: readFileSync(join(ROOT, page), 'utf8') }));

/** The code blocks right after a marker, in the README and every docs/ page. */
function blocksAfter(marker: RegExp): { page: string; name: string; code: string }[] {
  const found: { page: string; name: string; code: string }[] = [];
  const pattern = new RegExp(`${marker.source}\\s*\\n\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``, 'g');
  for (const { page, text } of PAGES) {
    for (const match of text.matchAll(pattern)) {
      found.push({ page, name: match[1] as string, code: match[2] as string });
    }
  }
  return found;
}

describe('README', () => {
  test('starts with the two fresh-machine commands', () => {
    const first = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    expect(first).toMatch(/^npm ci && npm start/m);
    expect(first).toMatch(/^npm test/m);
    expect(readme.indexOf('```sh')).toBeLessThan(readme.indexOf('\n\n', readme.indexOf('# sse-hub') + 10) + 2);
  });

  test('every <!-- file: --> block, in the README and docs/, is the example file, byte for byte', () => {
    const blocks = blocksAfter(/<!-- file: (\S+) -->/);
    expect(blocks.filter((b) => b.page === 'README.md').length).toBeGreaterThanOrEqual(2);
    expect(blocks.filter((b) => b.page !== 'README.md').length).toBeGreaterThanOrEqual(1);
    for (const block of blocks) {
      expect({ page: block.page, file: block.name, code: block.code }).toEqual({
        page: block.page,
        file: block.name,
        code: readFileSync(join(ROOT, block.name), 'utf8'),
      });
    }
  });

  test('the flag table of docs/cli.md is the one sse-runserver --help is built from', () => {
    const cli = readFileSync(join(ROOT, 'docs', 'cli.md'), 'utf8');
    expect(cli).toContain(`<!-- flags:start -->\n${flagsMarkdown(RUNSERVER_FLAGS)}\n<!-- flags:end -->`);
  });

  test('npm start runs sse-runserver with the in-memory broker', async () => {
    // Its own process group: npm runs the server in a child, and the whole
    // group must get the signal, or the server outlives the test.
    const proc = spawn('npm', ['start', '--', '--port', '0'], {
      detached: true,
      cwd: ROOT,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    proc.stdout.on('data', (c: Buffer) => (output += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (output += c.toString()));
    try {
      const match = await waitFor(
        () => /listening on (http:\/\/[\d.:]+)\/ \(broker: (\w+)\)/.exec(output) ?? undefined,
        {
          timeout: 15_000,
          what: 'npm start to listen',
        },
      );
      expect(match[2]).toBe('memory');
      const res = await fetch(`${match[1]}/healthz`);
      expect(await res.json()).toEqual({ ok: true, broker: 'memory' });
    } finally {
      // 'close' comes once every process holding its pipes, the server too, has exited.
      const closed = new Promise((resolve) => proc.once('close', resolve));
      process.kill(-(proc.pid as number), 'SIGTERM');
      await closed;
    }
  });
});

describe('examples/express', () => {
  test('app.js streams at /sse and a POST to a route publishes to the browsers', async () => {
    const proc = spawn(process.execPath, [join(ROOT, 'examples/express/app.js')], {
      cwd: ROOT,
      env: { ...cleanEnv(), PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    proc.stdout.on('data', (c: Buffer) => (output += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    try {
      const url = (await waitFor(() => /listening on (\S+)/.exec(output)?.[1], {
        timeout: 10_000,
        what: 'the example to listen',
      }))!;
      const reader = await SseReader.open(`${url}/sse?channels=orders`);
      expect(reader.status).toBe(200);
      const res = await fetch(`${url}/orders/42/ship`, { method: 'POST' });
      expect(res.status).toBe(202);
      const [event] = await reader.waitForEvents(1);
      expect(event).toEqual({ event: 'message', data: '{"type":"shipped","order":"42"}' });
      const script = await fetch(`${url}/media/sse-hub/sse.js`);
      expect(script.status).toBe(200);
      reader.close();
      proc.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      proc.kill('SIGKILL');
    }
  });

  test('model-hook.js publishes to the author when a model is saved', async () => {
    // Runs in its own process so that require('sse-hub') resolves to the built package, as for users.
    const script = `
      const http = require('node:http');
      const { configure, sseMiddleware, fromQuery } = require('sse-hub');
      const { Comment } = require('./examples/express/model-hook.js');
      const hub = configure({ broker: 'memory' });
      const server = http.createServer(sseMiddleware({ channels: fromQuery() })).listen(0, '127.0.0.1', () => {
        http.get('http://127.0.0.1:' + server.address().port + '/?channels=alice', (res) => {
          let text = '';
          res.on('data', (c) => {
            text += c;
            if (text.includes('data: ')) { process.stdout.write(text); hub.close().then(() => server.close()); }
          });
          new Comment('alice', 'hello').save();
        });
      });`;
    const proc = spawn(process.execPath, ['-e', script], {
      cwd: ROOT,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    const code = await new Promise((resolve) => proc.once('exit', resolve));
    expect(code).toBe(0);
    expect(stdout).toContain('event: message\ndata: {"type":"comment","text":"hello"}\n\n');
  });
});

describe('examples/errors.js (docs/errors.md)', () => {
  test('runs: a bad event name rejects with an SseHubError that is an EventError and a TypeError', async () => {
    const proc = spawn(process.execPath, [join(ROOT, 'examples/errors.js')], {
      cwd: ROOT,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise((resolve) => proc.once('exit', resolve));
    // The example asserts each claim itself (node:assert): a false one exits 1 with the AssertionError.
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toMatch(/^SSE_ERR_EVENT: event type "bad\\nname" contains a line break/);
  });
});

describeWithTools(['redis-server', 'redis-cli'], 'README and docs/protocol.md Redis example', () => {
  let redis: RedisServer;
  let server: RunningServer;

  beforeAll(async () => {
    redis = await RedisServer.start();
    server = await startRunserver(['--redis', redis.url]);
  });
  afterAll(async () => {
    await server?.stop();
    await redis?.stop();
  });

  const runBlocks = blocksAfter(/<!-- run: (redis-cli) -->/);
  test('the README and docs/protocol.md each show the redis-cli command', () => {
    expect(runBlocks.map((b) => b.page)).toEqual(expect.arrayContaining(['README.md', 'docs/protocol.md']));
  });

  test.each(runBlocks.map((b) => [b.page, b.code] as const))(
    "%s: the tornado-sse redis-cli command, exactly as written, reaches subscribers of 'all'",
    async (_page, code) => {
      const command = code.trim().replace(/^redis-cli /, `redis-cli -p ${redis.port} `);
      const all = await SseReader.open(`${server.url}/?channels=all`);
      const other = await SseReader.open(`${server.url}/?channels=other`);
      await waitFor(async () => (await redis.numsub('all')) === 1 && (await redis.numsub('other')) === 1, {
        what: 'subscriptions',
      });
      const proc = spawn('bash', ['-c', command], { stdio: 'ignore' });
      expect(await new Promise((resolve) => proc.once('exit', resolve))).toBe(0);
      const [event] = await all.waitForEvents(1);
      expect(event).toEqual({ event: 'message', data: '{"type": "message", "user": "tug"}' });
      await fetch(`${server.url}/publish`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ channel: 'other', data: 'marker' }),
      });
      await other.waitForEvents(1);
      expect(other.events).toEqual([{ event: 'message', data: 'marker' }]);
      all.close();
      other.close();
    },
  );
});
