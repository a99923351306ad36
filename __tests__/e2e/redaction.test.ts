// Credentials in URLs are never printed (regression: sse-send printed
// redis://user:PASSWORD@… in its error line, --doctor echoed user:pass@):
// error lines, logs, --doctor and /healthz of the built tools.
import { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { RUNSERVER, runNode, runSend, startRunserver, type RunningServer } from '../helpers/run-cli';
import { freePort } from '../helpers/ports';
import { waitFor } from '../helpers/wait-for';

const SECRET = 'PASSWORD-7f3a';

let server: RunningServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

test('sse-send: the error line for an unreachable Redis shows redis://***@', async () => {
  const port = await freePort();
  const result = await runSend(['all', 'message', 'x', '--redis', `redis://user:${SECRET}@127.0.0.1:${port}`]);
  expect(result.code).toBe(1);
  expect(result.stderr).toContain(`redis://***@127.0.0.1:${port}`);
  expect(result.stderr + result.stdout).not.toContain(SECRET);
});

test('sse-send and sse-runserver: a bad --redis URL is refused without echoing its password', async () => {
  const send = await runSend(['all', 'message', 'x', '--redis', `http://user:${SECRET}@h:1`]);
  const run = await runNode(RUNSERVER, ['--port', '0', '--redis', `http://user:${SECRET}@h:1`]);
  for (const result of [send, run]) {
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('http://***@h:1');
    expect(result.stderr + result.stdout).not.toContain(SECRET);
  }
});

test('--doctor: the report line names the URL without its credentials', async () => {
  const port = await freePort();
  const result = await runNode(RUNSERVER, ['--doctor', `http://user:${SECRET}@127.0.0.1:${port}/sse/`]);
  expect(result.code).toBe(1);
  expect(result.stdout).toContain(`http://***@127.0.0.1:${port}/sse/_probe`);
  expect(result.stdout + result.stderr).not.toContain(SECRET);
});

describeWithTools(['redis-server'], 'sse-runserver with a password in --redis', () => {
  test('logs (--debug) and /healthz never show the password, up or down', async () => {
    const redis = await RedisServer.start();
    try {
      await redis.command('CONFIG', 'SET', 'requirepass', SECRET);
      server = await startRunserver(['--redis', `redis://default:${SECRET}@127.0.0.1:${redis.port}`, '--debug']);
      const health = async (): Promise<{ status: number; text: string }> => {
        const res = await fetch(`${server?.url}/healthz`);
        return { status: res.status, text: await res.text() };
      };
      await waitFor(async () => (await health()).status === 200, { what: '/healthz 200' });
      expect((await health()).text).not.toContain(SECRET);
      await redis.stop();
      const down = await waitFor(async () => ((await health()).status === 503 ? health() : undefined), {
        what: '/healthz 503',
      });
      expect(down.text).not.toContain(SECRET);
      await waitFor(() => /redis .*error/i.test(server?.output() ?? ''), { what: 'a logged redis error' });
      expect(server.output()).not.toContain(SECRET);
    } finally {
      await redis.stop();
    }
  });
});
