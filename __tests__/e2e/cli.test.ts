// The built command-line tools as users
// run them — sse-runserver on a free port, the real curl binary, sse-send,
// POST /publish, --help, bad flags, /healthz with memory and with a real
// redis-server (killed → 503), SIGTERM, --redis / REDIS_URL, and --backlog
// as the kernel sees it.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RUNSERVER_FLAGS } from '../../src/cli/flags';
import { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { ROOT, RUNSERVER, runNode, runSend, startRunserver, type RunningServer } from '../helpers/run-cli';
import { getJson, SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

const execFileAsync = promisify(execFile);

let servers: RunningServer[] = [];
let readers: SseReader[] = [];
let procs: ChildProcess[] = [];

afterEach(async () => {
  for (const r of readers) r.close();
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(servers.map((s) => s.stop('SIGKILL')));
  readers = [];
  procs = [];
  servers = [];
});

async function runserver(args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<RunningServer> {
  const server = await startRunserver(args, env);
  servers.push(server);
  return server;
}

async function open(url: string): Promise<SseReader> {
  const reader = await SseReader.open(url);
  readers.push(reader);
  return reader;
}

/** `curl -N -i URL`, the real binary; resolves with a getter of everything it printed so far. */
function curl(url: string): () => string {
  const proc = spawn('curl', ['-sS', '-N', '-i', url], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(proc);
  let out = '';
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
  return () => out;
}

describeWithTools(['curl'], 'sse-runserver with the in-memory broker (npm start)', () => {
  test('npm start runs the built sse-runserver', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe('node dist/cjs/bin/sse-runserver.js');
  });

  test('listens on 127.0.0.1 with the memory broker; curl -N sees the documented headers and first bytes', async () => {
    const server = await runserver();
    expect(server.output()).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+\/ \(broker: memory\)/);
    const output = curl(`${server.url}/?channels=all`);
    await waitFor(() => output().includes(': sse-hub\n\n'), { what: 'curl to get the first bytes' });
    const [head, body] = output().split('\r\n\r\n') as [string, string];
    const headers = head.toLowerCase().split('\r\n');
    expect(headers[0]).toBe('http/1.1 200 ok');
    expect(headers).toEqual(
      expect.arrayContaining([
        'content-type: text/event-stream; charset=utf-8',
        'cache-control: no-cache, no-transform',
        'x-accel-buffering: no',
        'connection: keep-alive',
      ]),
    );
    expect(headers.some((h) => h.startsWith('content-encoding'))).toBe(false);
    expect(body).toBe('retry: 3000\n: sse-hub\n\n');
  });

  test('sse-send all message \'{"type":"message"}\' and POST /publish from loopback deliver to curl', async () => {
    const server = await runserver();
    const output = curl(`${server.url}/?channels=all`);
    await waitFor(() => output().includes(': sse-hub\n\n'), { what: 'curl to open the stream' });

    const sent = await runSend(['all', 'message', '{"type":"message"}', '--server', server.url]);
    expect(sent).toMatchObject({ code: 0, stderr: '' });
    await waitFor(() => output().includes('event: message\ndata: {"type":"message"}\n\n'), { what: 'sse-send' });

    const res = await fetch(`${server.url}/publish`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ channel: 'all', event: 'update', data: { n: 1 } }),
    });
    expect(res.status).toBe(202);
    await waitFor(() => output().includes('event: update\ndata: {"n":1}\n\n'), { what: 'POST /publish' });
  });

  test('/healthz: 200 { ok: true, broker: "memory" }', async () => {
    const server = await runserver();
    expect(await getJson(`${server.url}/healthz`)).toMatchObject({
      status: 200,
      body: { ok: true, broker: 'memory' },
    });
  });

  test.each(['SIGTERM', 'SIGINT'] as const)(
    '%s ends open streams cleanly (final chunk, no reset) and exits 0 within 5 s',
    async (signal) => {
      const server = await runserver();
      const reader = await open(`${server.url}/?channels=all`);
      expect(reader.status).toBe(200);
      await waitFor(() => reader.retry === 3000, { what: 'the preamble' });
      const started = Date.now();
      const code = await server.stop(signal);
      expect(code).toBe(0);
      expect(Date.now() - started).toBeLessThan(5000);
      await reader.waitForEnd(); // rejects on a reset connection
      expect(reader.endedBy).toBe('clean');
    },
  );

  test('tuning flags and their environment variables reach the stream', async () => {
    const server = await runserver(['--retry', '1234'], { SSE_MAX_CHANNELS: '2' });
    const reader = await open(`${server.url}/?channels=a,b`);
    await waitFor(() => reader.retry === 1234, { what: 'retry: 1234' });
    expect((await getJson(`${server.url}/?channels=a,b,c`)).status).toBe(400);
  });
});

describeWithTools(['ss'], 'sse-runserver --backlog', () => {
  /** The accept queue the kernel keeps for the server's listening socket (`ss`'s Send-Q column). */
  async function acceptQueue(server: RunningServer): Promise<number> {
    const { stdout } = await execFileAsync('ss', ['-ltnH', `sport = :${new URL(server.url).port}`]);
    return Number(stdout.trim().split(/\s+/)[2]);
  }

  test('--backlog and SSE_BACKLOG set the listen queue a reconnect storm lands in; the default is 4096, not Node’s 511', async () => {
    expect(await acceptQueue(await runserver(['--backlog', '1234']))).toBe(1234);
    expect(await acceptQueue(await runserver([], { SSE_BACKLOG: '321' }))).toBe(321);
    const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
    expect(await acceptQueue(await runserver())).toBe(Math.min(4096, somaxconn));
  });
});

describe('--help and bad usage', () => {
  test('--help lists every flag with its environment variable and exits 0', async () => {
    const { code, stdout } = await runNode(RUNSERVER, ['--help']);
    expect(code).toBe(0);
    const help = stdout.replace(/\s+/g, ' ');
    for (const spec of RUNSERVER_FLAGS) {
      expect(help).toContain(spec.flags.split(' ')[0] as string);
      expect(help).toContain(`env: ${spec.env})`);
    }
  });

  test.each([
    [['--bogus'], /^sse-runserver: error: unknown option '--bogus'$/],
    [['--port', 'abc'], /^sse-runserver: error: .*--port.*expected a port number/],
    [['--max-channels', '0'], /^sse-runserver: error: .*expected a positive whole number/],
    [['--redis', 'localhost:6379'], /^sse-runserver: error: .*expected a redis:\/\/ URL/],
    [['--channels', 'cookies'], /^sse-runserver: error: .*cookies.*/],
    [['extra-argument'], /^sse-runserver: error: /],
    [['--presence-channels', 'lobby,a b'], /^sse-runserver: error: presenceChannels must be a list of channel names/],
    [['--presence-ttl', '2'], /^sse-runserver: error: presenceTtl must be at least 3 seconds/],
  ])('sse-runserver %j → exit 2 with one line', async (args, message) => {
    const { code, stdout, stderr } = await runNode(RUNSERVER, args);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.endsWith('\n')).toBe(true);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr.trimEnd()).toMatch(message);
  });

  test.each([
    [['--bogus', 'all', 'message', 'x'], /unknown option '--bogus'/],
    [[], /missing required argument 'channel'/],
    [['a b', 'message', 'x'], /not a valid channel name/],
    [['all', 'a\nb', 'x'], /line break/],
  ])('sse-send %j → exit 2 with one line', async (args, message) => {
    const { code, stderr } = await runSend(args);
    expect(code).toBe(2);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/^sse-send: error: /);
    expect(stderr).toMatch(message);
  });

  test('sse-send to a server that is not there → exit 1 with one line naming it', async () => {
    const { code, stderr } = await runSend(['all', 'message', 'x', '--server', 'http://127.0.0.1:1']);
    expect(code).toBe(1);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/cannot reach sse-runserver at http:\/\/127\.0\.0\.1:1/);
  });
});

describeWithTools(['redis-server'], 'sse-runserver with Redis', () => {
  let redis: RedisServer;
  beforeEach(async () => {
    redis = await RedisServer.start();
  });
  afterEach(async () => {
    await redis.stop();
  });

  test.each([
    ['--redis URL', (url: string) => [['--redis', url], {}] as const],
    ['REDIS_URL', (url: string) => [[], { REDIS_URL: url }] as const],
  ])('%s selects the redis broker; sse-send --redis delivers', async (_how, how) => {
    const [args, env] = how(redis.url);
    const server = await runserver([...args], env);
    expect(server.output()).toMatch(/broker: redis/);
    await waitFor(async () => (await getJson(`${server.url}/healthz`)).status === 200, { what: 'healthz 200' });
    // With Redis, sse-runserver runs one worker per core; /healthz then also says how many answered.
    expect((await getJson(`${server.url}/healthz`)).body).toMatchObject({ ok: true, broker: 'redis' });

    const reader = await open(`${server.url}/?channels=all`);
    await waitFor(async () => (await redis.numsub('all')) >= 1, { what: 'SUBSCRIBE all' });
    const sent = await runSend(['all', 'message', '{"type":"message"}', '--redis', redis.url]);
    expect(sent).toMatchObject({ code: 0, stderr: '' });
    await reader.waitForEvents(1);
    expect(reader.events).toEqual([{ event: 'message', data: '{"type":"message"}' }]);
  });

  test('/healthz turns 503 within 5 s of redis-server being killed, and 200 again when it is back', async () => {
    const server = await runserver(['--redis', redis.url]);
    await waitFor(async () => (await getJson(`${server.url}/healthz`)).status === 200, { what: 'healthz 200' });
    await redis.stop('SIGKILL');
    const down = await waitFor(
      async () => {
        const answer = await getJson(`${server.url}/healthz`);
        return answer.status === 503 ? answer : undefined;
      },
      { timeout: 5000, what: '/healthz 503' },
    );
    expect(down.body).toMatchObject({ ok: false, broker: 'redis', error: expect.any(String) });
    await redis.restart();
    await waitFor(async () => (await getJson(`${server.url}/healthz`)).status === 200, {
      timeout: 10_000,
      what: '/healthz 200 again',
    });
  });

  test('POST /publish answers 503 JSON while redis-server is down, and 202 again once it is back', async () => {
    const server = await runserver(['--redis', redis.url]);
    const publish = (data: string): Promise<Response> =>
      fetch(`${server.url}/publish`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ channel: 'all', event: 'message', data }),
      });
    await waitFor(async () => (await publish('before')).status === 202, { what: 'a first publish' });
    await redis.stop('SIGKILL');
    const refused = await waitFor(
      async () => {
        const res = await publish('while down');
        return res.status === 503 ? res : undefined;
      },
      { timeout: 5000, what: 'POST /publish 503' },
    );
    expect(refused.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await refused.json()).toEqual({ error: expect.stringMatching(/redis/) });
    await redis.restart();
    await waitFor(async () => (await publish('after')).status === 202, { timeout: 10_000, what: 'POST /publish 202' });
  });

  test('SIGTERM with Redis ends streams and exits 0 within 5 s', async () => {
    const server = await runserver(['--redis', redis.url]);
    const reader = await open(`${server.url}/?channels=all`);
    await waitFor(() => reader.retry !== undefined, { what: 'the preamble' });
    const started = Date.now();
    expect(await server.stop('SIGTERM')).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    await reader.waitForEnd(); // rejects on a reset connection
    expect(reader.endedBy).toBe('clean');
  });
});
