// sse-runserver and sse-send on a Sentinel-managed Redis with passwords on
// the nodes and on the sentinels: session mode reads the sessions from the
// master, and after a failover from the new one (new logins work, a logout
// still ends its stream); sse-send publishes through the sentinels.
import { sign } from 'cookie-signature';
import { createClient } from 'redis';
import { SentinelSetup } from '../helpers/redis-sentinel';
import { describeWithTools } from '../helpers/require-tool';
import { RUNSERVER, runNode, SEND, startRunserver, type RunningServer } from '../helpers/run-cli';
import { SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

jest.setTimeout(60_000);

const SECRET = 'app-secret';
const NODE_PASSWORD = 'node-pw';
const SENTINEL_PASSWORD = 'sentinel-pw';

describeWithTools(['redis-server', 'redis-sentinel'], 'Sentinel from the command line, with credentials', () => {
  let setup: SentinelSetup;
  let server: RunningServer | undefined;
  const readers: SseReader[] = [];

  beforeAll(async () => {
    setup = await SentinelSetup.start({ password: NODE_PASSWORD, sentinelPassword: SENTINEL_PASSWORD });
  });
  afterAll(async () => {
    for (const reader of readers) reader.close();
    await server?.stop();
    await setup.stop();
  });

  /**
   * Writes a connect-redis style session for `user` to the node on `port`;
   * returns its signed cookie. `replicated`: waits until the replica has it.
   */
  async function login(port: number, sid: string, user: string, replicated = false): Promise<string> {
    const client = createClient({ url: `redis://:${NODE_PASSWORD}@127.0.0.1:${port}` });
    client.on('error', () => undefined);
    await client.connect();
    const session = {
      cookie: { originalMaxAge: 86_400_000, expires: new Date(Date.now() + 86_400_000) },
      user: { username: user },
    };
    await client.set(`sess:${sid}`, JSON.stringify(session));
    // Replication is asynchronous: a session the master has not passed on
    // yet is lost with it, and its stream is then rightly ended as logged out.
    // The failover below starts from a session both nodes have.
    if (replicated) expect(await client.sendCommand(['WAIT', '1', '5000'])).toBe(1);
    await client.close();
    return `connect.sid=${encodeURIComponent(`s:${sign(sid, SECRET)}`)}`;
  }

  async function logout(port: number, sid: string): Promise<void> {
    const client = createClient({ url: `redis://:${NODE_PASSWORD}@127.0.0.1:${port}` });
    client.on('error', () => undefined);
    await client.connect();
    await client.del(`sess:${sid}`);
    await client.close();
  }

  const send = (channel: string, data: string) =>
    runNode(SEND, [
      '--redis-sentinel',
      setup.sentinels.join(','),
      '--redis-sentinel-name',
      setup.name,
      '--redis-password',
      NODE_PASSWORD,
      '--redis-sentinel-password',
      SENTINEL_PASSWORD,
      channel,
      'message',
      data,
    ]);

  test('session streams and sse-send follow the promoted master', async () => {
    const firstMaster = setup.master.port;
    server = await startRunserver(
      [
        '--channels',
        'session',
        '--session-secret',
        SECRET,
        '--session-recheck',
        '1',
        '--redis-sentinel',
        setup.sentinels.join(','),
        '--redis-sentinel-name',
        setup.name,
      ],
      // Credentials from the environment, as the docs recommend.
      { SSE_REDIS_PASSWORD: NODE_PASSWORD, SSE_REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD },
    );
    const url = server.url;
    await waitFor(async () => (await fetch(`${url}/healthz`)).status === 200, { timeout: 10_000, what: '200' });
    const alice = await SseReader.open(`${url}/`, { cookie: await login(firstMaster, 'sid-alice', 'alice', true) });
    readers.push(alice);
    expect(alice.status).toBe(200);
    await waitFor(
      async () => {
        const sent = await send('alice', 'before');
        expect(sent.code).toBe(0);
        return alice.events.some((e) => e.data === 'before');
      },
      { timeout: 10_000, interval: 200, what: 'sse-send to reach the session stream' },
    );

    await setup.master.stop('SIGKILL');
    await setup.waitForMaster(setup.replica.port);
    await waitFor(async () => (await fetch(`${url}/healthz`)).status === 200, { timeout: 20_000, what: '200 again' });

    // A login written to the new master is read from it.
    const bob = await SseReader.open(`${url}/`, { cookie: await login(setup.replica.port, 'sid-bob', 'bob') });
    readers.push(bob);
    expect(bob.status).toBe(200);
    // A fresh sse-send asks a sentinel, which may name the new master a moment
    // after the server's /healthz is 200 again: it exits 1 until then.
    await waitFor(async () => (await send('alice', 'after')).code === 0, {
      timeout: 15_000,
      interval: 200,
      what: 'sse-send through the sentinels after the promotion',
    });
    await waitFor(() => alice.events.some((e) => e.data === 'after'), { what: '"after" on the stream opened before' });
    expect(alice.ended).toBe(false);
    // A logout on the new master ends the stream at the next re-check.
    await logout(setup.replica.port, 'sid-alice');
    await alice.waitForEnd(10_000);
    expect(bob.ended).toBe(false);
  });

  test('bad sentinel flags: one line, exit 2', async () => {
    const noName = await runNode(SEND, ['--redis-sentinel', '127.0.0.1:1', 'all', 'message', 'x']);
    expect(noName.code).toBe(2);
    expect(noName.stderr).toMatch(/--redis-sentinel needs --redis-sentinel-name/);
    const badAddress = await runNode(SEND, ['--redis-sentinel', 'nohost', 'all', 'message', 'x']);
    expect(badAddress.code).toBe(2);
    expect(badAddress.stderr).toMatch(/expected host:port/);
    const both = await runNode(SEND, [
      '--redis',
      'redis://127.0.0.1:1',
      '--redis-cluster',
      'redis://127.0.0.1:2',
      'all',
      'message',
      'x',
    ]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/exclude each other/);
    const waitWithoutHistory = await runNode(RUNSERVER, [
      '--port',
      '0',
      '--redis',
      'redis://127.0.0.1:1',
      '--redis-wait-replicas',
      '1',
    ]);
    expect(waitWithoutHistory.code).toBe(2);
    expect(waitWithoutHistory.stderr).toMatch(/--redis-wait-replicas needs --history/);
  });
});
