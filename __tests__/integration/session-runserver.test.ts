// Session mode as a second process: `sse-runserver --channels session` reads the cookie a
// real Express app (express-session + connect-redis 9) set, verifies it with
// the rotation list, loads the session read-only from the same Redis, and
// ends the streams of users who log out. Real redis-server, real processes.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type http from 'node:http';
import express from 'express';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import { sign } from 'cookie-signature';
import { EventSource } from 'eventsource';
import { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { RUNSERVER, runNode, startRunserver, type RunningServer } from '../helpers/run-cli';
import { SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

const APP_SECRET = 'new-secret';
const OLD_SECRET = 'old-secret';
const DAY_MS = 24 * 3600 * 1000;

describeWithTools(['redis-server'], 'sse-runserver --channels session', () => {
  let redis: RedisServer;
  let client: ReturnType<typeof createClient>;
  let app: { url: string; server: http.Server };
  let sse: RunningServer;
  let customPath: RunningServer;
  const readers: SseReader[] = [];

  /** The web app: express-session + connect-redis, as a user's app would be. */
  async function startApp(): Promise<{ url: string; server: http.Server }> {
    const web = express();
    web.use(
      session({
        store: new RedisStore({ client }),
        secret: [APP_SECRET, OLD_SECRET],
        resave: false,
        saveUninitialized: false,
        cookie: { maxAge: DAY_MS },
      }),
    );
    web.post('/login/:user', (req, res) => {
      (req.session as unknown as Record<string, unknown>).user = { username: req.params.user };
      res.json({ ok: true });
    });
    web.post('/login-as/:field/:user', (req, res) => {
      const s = req.session as unknown as Record<string, unknown>;
      if (req.params.field === 'profile') s.profile = { login: req.params.user };
      else if (req.params.field === 'passport') s.passport = { user: req.params.user };
      else s.username = req.params.user;
      res.json({ ok: true });
    });
    web.post('/visit', (req, res) => {
      (req.session as unknown as Record<string, unknown>).visits = 1; // a session without a user
      res.json({ ok: true });
    });
    web.post('/logout', (req, res, next) => req.session.destroy((err) => (err ? next(err) : res.json({ ok: true }))));
    const server = web.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  }

  /** POSTs to the app and returns the `name=value` of the cookie it set. */
  async function appCookie(path: string, cookie?: string): Promise<string> {
    const res = await fetch(app.url + path, { method: 'POST', headers: cookie ? { cookie } : {} });
    expect(res.status).toBe(200);
    const setCookie = res.headers.get('set-cookie');
    if (setCookie === null) return cookie as string;
    return setCookie.split(';')[0] as string;
  }

  const sidOf = (cookie: string): string => {
    const value = decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1));
    return value.slice(2, value.lastIndexOf('.'));
  };

  async function open(server: RunningServer, query = '', cookie?: string): Promise<SseReader> {
    const reader = await SseReader.open(`${server.url}/${query}`, cookie ? { cookie } : {});
    readers.push(reader);
    return reader;
  }

  async function expectRefused(reader: SseReader, status: number, pattern: RegExp): Promise<void> {
    expect(reader.status).toBe(status);
    expect(reader.headers['content-type']).toMatch(/^application\/json/);
    await reader.waitForEnd();
    expect(JSON.parse(reader.body)).toEqual({ error: expect.stringMatching(pattern) });
  }

  /**
   * Publishes `[event, "<tag>:<channel>"]` on each channel in order, once the
   * SSE processes listen on every channel that has a listening stream. Redis
   * delivers one connection's messages in order, so a frame that should not
   * arrive (published first) would show up before the ones that do.
   */
  async function publishInOrder(channels: string[], listened: string[], tag: string): Promise<void> {
    for (const channel of listened) {
      await waitFor(async () => (await redis.numsub(channel)) > 0, { what: `a subscriber on ${channel}` });
    }
    for (const channel of channels) await redis.publish(channel, JSON.stringify(['message', `${tag}:${channel}`]));
  }

  beforeAll(async () => {
    redis = await RedisServer.start();
    client = createClient({ url: redis.url, socket: { reconnectStrategy: (n) => Math.min(50 * n, 500) } });
    client.on('error', () => undefined);
    await client.connect();
    app = await startApp();
    sse = await startRunserver([
      '--channels',
      'session',
      '--redis',
      redis.url,
      '--session-secret',
      'unrelated',
      '--session-secret',
      `${OLD_SECRET},${APP_SECRET}`,
      '--session-recheck',
      '1',
      '--public-channels',
      'news,weather',
      '--retry',
      '1000',
      '--debug',
    ]);
    customPath = await startRunserver([
      '--channels',
      'session',
      '--redis',
      redis.url,
      '--session-secret',
      APP_SECRET,
      '--session-user-path',
      'profile.login',
    ]);
  });

  afterEach(() => {
    for (const reader of readers.splice(0)) reader.close();
  });

  afterAll(async () => {
    await Promise.all([sse?.stop(), customPath?.stop()]);
    await new Promise((resolve) => app?.server.close(resolve));
    await client?.close();
    await redis?.stop();
  });

  test("1. the app's login cookie subscribes the user to [username, 'all'], read-only", async () => {
    const bob = await appCookie('/login/bob');
    const key = `sess:${sidOf(bob)}`;
    const before = { value: await client.get(key), pttl: await client.pTTL(key) };
    expect(before.value).toContain('"username":"bob"');

    const reader = await open(sse, '', bob);
    expect(reader.status).toBe(200);
    await publishInOrder(['admin', 'bob', 'all'], ['bob', 'all'], 'one');
    const events = await reader.waitForEvents(2);
    expect(events.map((e) => e.data)).toEqual(['one:bob', 'one:all']);

    // Neither re-saved nor touched: same bytes, and the TTL only ran down.
    expect(await client.get(key)).toBe(before.value);
    expect(await client.pTTL(key)).toBeLessThanOrEqual(before.pttl);
    expect(await client.pTTL(key)).toBeGreaterThan(0);
  });

  test('1. the default getUser also finds session.username and session.passport.user', async () => {
    for (const [field, user] of [
      ['username', 'carol'],
      ['passport', 'dave'],
    ] as const) {
      const cookie = await appCookie(`/login-as/${field}/${user}`);
      const reader = await open(sse, '', cookie);
      expect(reader.status).toBe(200);
      await publishInOrder([user], [user], 'getuser');
      expect((await reader.waitForEvents(1))[0]?.data).toBe(`getuser:${user}`);
    }
  });

  test('1. --session-user-path a.b overrides where the user is found', async () => {
    const erin = await appCookie('/login-as/profile/erin');
    const reader = await open(customPath, '', erin);
    expect(reader.status).toBe(200);
    await publishInOrder(['erin'], ['erin'], 'path');
    expect((await reader.waitForEvents(1))[0]?.data).toBe('path:erin');

    // The default places are not looked at once the path is given.
    const frank = await appCookie('/login/frank');
    await expectRefused(await open(customPath, '', frank), 403, /not logged in/);
  });

  test('2. 403 JSON: no cookie, bad signature, unsigned, missing or expired session, no user, a user name that is not a channel', async () => {
    await expectRefused(await open(sse), 403, /no session cookie "connect\.sid"/);
    await expectRefused(await open(sse, '', 'other=1'), 403, /no session cookie/);

    const bob = await appCookie('/login/bob');
    const tampered = bob.replace(/.(;|$)/, (c) => (c[0] === 'A' ? 'B' : 'A'));
    await expectRefused(await open(sse, '', tampered), 403, /bad signature/);
    const foreign = `connect.sid=${encodeURIComponent(`s:${sign(sidOf(bob), 'someone-else')}`)}`;
    await expectRefused(await open(sse, '', foreign), 403, /bad signature/);
    await expectRefused(await open(sse, '', `connect.sid=${sidOf(bob)}`), 403, /bad signature/);

    const missing = `connect.sid=${encodeURIComponent(`s:${sign('no-such-session', APP_SECRET)}`)}`;
    await expectRefused(await open(sse, '', missing), 403, /expired or was logged out/);

    // An expired session still in the store (e.g. a store without TTLs).
    await client.set(
      'sess:stale',
      JSON.stringify({ cookie: { expires: new Date(Date.now() - 1000).toISOString() }, user: { username: 'bob' } }),
    );
    const stale = `connect.sid=${encodeURIComponent(`s:${sign('stale', APP_SECRET)}`)}`;
    await expectRefused(await open(sse, '', stale), 403, /expired or was logged out/);

    const visitor = await appCookie('/visit');
    await expectRefused(await open(sse, '', visitor), 403, /not logged in/);

    // A login the web app accepts but that cannot be a channel name.
    const spaced = await appCookie('/login/bob%20smith');
    await expectRefused(await open(sse, '', spaced), 403, /user name is not a valid channel name/);
  });

  test('2. secret rotation: a cookie signed with any listed secret (repeated flag or comma list) is accepted', async () => {
    const bob = await appCookie('/login/bob'); // signed with the app's current secret
    const oldSigned = `connect.sid=${encodeURIComponent(`s:${sign(sidOf(bob), OLD_SECRET)}`)}`;
    for (const cookie of [bob, oldSigned]) {
      const reader = await open(sse, '', cookie);
      expect(reader.status).toBe(200);
    }
    // The other server was given only the app's current secret.
    await expectRefused(await open(customPath, '', oldSigned), 403, /bad signature/);
  });

  test('3. the query cannot widen the session: other users’ channels are refused, public ones added', async () => {
    const bob = await appCookie('/login/bob');
    await expectRefused(await open(sse, '?channels=admin', bob), 403, /not allowed to listen on channel "admin"/);
    await expectRefused(await open(sse, '?channels=news,admin', bob), 403, /channel "admin"/);
    await expectRefused(await open(sse, '?channels=bad%20name', bob), 400, /not a valid channel name/);

    const own = await open(sse, '?channels=bob,all', bob);
    const withNews = await open(sse, '?channels=news', bob);
    expect([own.status, withNews.status]).toEqual([200, 200]);
    await publishInOrder(['admin', 'news', 'bob'], ['news', 'bob'], 'q');
    expect((await withNews.waitForEvents(2)).map((e) => e.data)).toEqual(['q:news', 'q:bob']);
    expect((await own.waitForEvents(1)).map((e) => e.data)).toEqual(['q:bob']);
    expect(own.raw).not.toContain('q:admin');
    expect(own.raw).not.toContain('q:news');
  });

  test('4. logging out ends the open stream within --session-recheck and the next connection is 403', async () => {
    const bob = await appCookie('/login/bob');
    const admin = await appCookie('/login/admin');
    const bobStream = await open(sse, '', bob);
    const adminStream = await open(sse, '', admin);
    expect([bobStream.status, adminStream.status]).toEqual([200, 200]);

    await appCookie('/logout', bob);
    const loggedOut = Date.now();
    await bobStream.waitForEnd(5000);
    // --session-recheck 1: one timer tick plus one MGET (the issue's bound, with slack for a busy CI machine).
    expect(Date.now() - loggedOut).toBeLessThan(1000 + 1500);
    await expectRefused(await open(sse, '', bob), 403, /expired or was logged out/);

    // Other users' streams are untouched by the re-check.
    await publishInOrder(['admin'], ['admin'], 'still');
    expect((await adminStream.waitForEvents(1))[0]?.data).toBe('still:admin');
    expect(adminStream.ended).toBe(false);
  });

  test('5. --user-channel-prefix user: puts bob on user:bob; without it, a user named like a public channel is refused', async () => {
    const prefixed = await startRunserver([
      '--channels',
      'session',
      '--redis',
      redis.url,
      '--session-secret',
      APP_SECRET,
      '--public-channels',
      'news',
      '--user-channel-prefix',
      'user:',
    ]);
    try {
      const bob = await appCookie('/login/bob');
      const stream = await open(prefixed, '', bob);
      expect({ status: stream.status, body: stream.body }).toEqual({ status: 200, body: '' });
      await publishInOrder(['bob', 'user:bob'], ['user:bob'], 'p');
      expect((await stream.waitForEvents(1)).map((e) => e.data)).toEqual(['p:user:bob']);
      expect(stream.raw).not.toContain('p:bob');
      // A user called "news" has a channel of their own under the prefix...
      const news = await appCookie('/login/news');
      const asNews = await open(prefixed, '?channels=news', news);
      expect({ status: asNews.status, body: asNews.body }).toEqual({ status: 200, body: '' });
      // ...but where user names are bare channels, that user is refused (regression: got the public channel as theirs).
      await expectRefused(await open(sse, '', news), 403, /also a public channel.*--user-channel-prefix/);
    } finally {
      await prefixed.stop();
    }
  });

  test('regression: secrets are used verbatim; one the comma list would alter is refused at start-up (exit 2), never echoed', async () => {
    const base = ['--port', '0', '--channels', 'session', '--redis', redis.url];
    const refused: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [['--session-secret', ' padded-secret-1'], {}, /spaces around it.*SSE_SESSION_SECRETS/],
      [['--session-secret', 'padded-secret-1, padded-secret-2'], {}, /spaces around it/],
      [['--session-secret', 'padded-secret-1,,padded-secret-2'], {}, /empty item/],
      [[], { SSE_SESSION_SECRET: 'padded-secret-1 ' }, /spaces around it/],
      [[], { SSE_SESSION_SECRETS: 'padded-secret-1' }, /SSE_SESSION_SECRETS must be a JSON array/],
      [[], { SSE_SESSION_SECRETS: '[]' }, /SSE_SESSION_SECRETS must be a JSON array/],
      [['--session-secret-file', '/nonexistent/secret'], {}, /--session-secret-file .* cannot be read/],
      [['--session-secret', 's', '--user-channel-prefix', 'user '], {}, /user channel prefix/],
    ];
    for (const [args, env, pattern] of refused) {
      const result = await runNode(RUNSERVER, [...base, ...args], env);
      expect({ args, env, code: result.code }).toEqual({ args, env, code: 2 });
      expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(pattern)]);
      expect(result.stderr).not.toContain('padded-secret');
    }
    const result = await runNode(RUNSERVER, ['--port', '0', '--user-channel-prefix', 'user:']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--user-channel-prefix needs --channels session/);
  });

  test('SSE_SESSION_SECRETS (JSON array) and --session-secret-file pass secrets with commas and spaces verbatim', async () => {
    const bob = await appCookie('/login/bob');
    const signedWith = (secret: string): string => `connect.sid=${encodeURIComponent(`s:${sign(sidOf(bob), secret)}`)}`;
    const dir = mkdtempSync(join(tmpdir(), 'sse-secret-'));
    const file = join(dir, 'secrets');
    writeFileSync(file, ' file secret, with comma \nsecond\n', { mode: 0o600 });
    const fromEnv = await startRunserver(['--channels', 'session', '--redis', redis.url], {
      SSE_SESSION_SECRETS: JSON.stringify([' json secret, with comma ', 'x']),
    });
    const fromFile = await startRunserver([
      '--channels',
      'session',
      '--redis',
      redis.url,
      '--session-secret-file',
      file,
    ]);
    try {
      expect((await open(fromEnv, '', signedWith(' json secret, with comma '))).status).toBe(200);
      expect((await open(fromFile, '', signedWith(' file secret, with comma '))).status).toBe(200);
      // Verbatim: the trimmed secret is a different secret.
      await expectRefused(await open(fromEnv, '', signedWith('json secret, with comma')), 403, /bad signature/);
      await expectRefused(await open(fromFile, '', signedWith('file secret')), 403, /bad signature/);
    } finally {
      await Promise.all([fromEnv.stop(), fromFile.stop()]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('bad session flags: exit 2 with one line', async () => {
    const cases: [string[], RegExp][] = [
      [['--channels', 'session', '--session-secret', 's'], /--channels session needs --redis URL/],
      [['--channels', 'session', '--redis', redis.url], /needs --session-secret/],
      [['--session-secret', 's'], /--session-secret needs --channels session/],
      [['--channels', 'session', '--redis', redis.url, '--session-secret', 's', '--public-channels', 'a b'], /"a b"/],
      [
        ['--channels', 'session', '--redis', redis.url, '--session-secret', 's', '--session-user-path', 'a..b'],
        /dotted path/,
      ],
      [['--channels', 'session', '--redis', redis.url, '--session-secret', 's', '--session-recheck', '0'], /positive/],
    ];
    for (const [args, pattern] of cases) {
      const result = await runNode(RUNSERVER, ['--port', '0', ...args]);
      expect({ args, code: result.code }).toEqual({ args, code: 2 });
      expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(pattern)]);
    }
  });

  test('presence: GET /channels names the logged-in users, one per user however many tabs', async () => {
    const bob = await appCookie('/login/pres-bob');
    const alice = await appCookie('/login/pres-alice');
    for (const cookie of [bob, bob, alice]) expect((await open(sse, '', cookie)).status).toBe(200);
    // --redis runs a worker per core, each with its own record: whichever worker
    // answers sees the others' streams once their records are refreshed (within a second).
    const channel = async (name: string): Promise<unknown> => (await fetch(`${sse.url}/channels/${name}`)).json();
    const expected = { channel: 'pres-bob', connections: 2, users: ['pres-bob'] };
    await waitFor(
      async () =>
        JSON.stringify(await channel('pres-bob')) === JSON.stringify(expected) &&
        JSON.stringify(await channel('pres-bob')) === JSON.stringify(expected),
      { what: "both of bob's tabs, seen from every worker" },
    );
    await waitFor(async () => ((await channel('pres-alice')) as { connections: number }).connections === 1);
    await waitFor(
      async () => {
        const { users } = (await channel('all')) as { users: string[] };
        return users.includes('pres-alice') && users.includes('pres-bob');
      },
      { what: 'both users on all' },
    );
  });

  test('regression: while the session store is down a new stream gets 200 + retry: + end (not 503); open ones stay open', async () => {
    const bob = await appCookie('/login/bob');
    const open1 = await open(sse, '', bob);
    expect(open1.status).toBe(200);
    await redis.stop();
    try {
      const refused = await open(sse, '', bob);
      // A non-200 would make EventSource give up for good: 200, a retry, and the end.
      expect(refused.status).toBe(200);
      expect(refused.headers['content-type']).toMatch(/^text\/event-stream/);
      await refused.waitForEnd();
      expect(refused.retry).toBeGreaterThanOrEqual(1000);
      expect(refused.retry).toBeLessThan(2000); // --retry 1000, jittered over [1000, 2000)
      expect(refused.events).toEqual([]);
      // Two re-checks run without the store (--debug logs each): the verified stream is kept.
      const skipped = (): number => sse.output().split('session re-check skipped').length - 1;
      const before = skipped();
      await waitFor(() => skipped() >= before + 2, { what: 'two re-checks without the store' });
      expect(open1.ended).toBe(false);
    } finally {
      await redis.restart();
    }
  });

  test('a slow session store (Redis paused past --session-lookup-timeout) → 200 + retry: + end', async () => {
    const impatient = await startRunserver([
      '--channels',
      'session',
      '--redis',
      redis.url,
      '--session-secret',
      APP_SECRET,
      '--session-lookup-timeout',
      '300',
      '--retry',
      '1000',
    ]);
    try {
      const bob = await appCookie('/login/bob');
      expect((await open(impatient, '', bob)).status).toBe(200);
      // CLIENT PAUSE: Redis holds every client's commands for 1.5 s — slow, not down.
      expect(await redis.command('CLIENT', 'PAUSE', '1500')).toMatch(/^\+OK/);
      const refused = await open(impatient, '', bob);
      // Had the lookup waited out the pause, the session would have been found and the stream stayed open.
      await refused.waitForEnd();
      expect(refused.status).toBe(200);
      expect(refused.retry).toBeGreaterThanOrEqual(1000);
      expect(refused.events).toEqual([]);
    } finally {
      await impatient.stop();
    }
  });

  test('an eventsource client that connects during a Redis outage keeps retrying, then opens and receives once Redis is back with its session', async () => {
    const bob = await appCookie('/login/bob');
    const key = `sess:${sidOf(bob)}`;
    const saved = { value: (await client.get(key)) as string, pttl: await client.pTTL(key) };
    await redis.stop();
    const source = new EventSource(`${sse.url}/`, {
      fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, cookie: bob } }),
    });
    try {
      const got: string[] = [];
      source.onmessage = (e) => got.push(e.data as string);
      const refusals = (): number =>
        sse.output().split('refused a stream: the session store is unavailable').length - 1;
      const before = refusals();
      await waitFor(() => refusals() >= before + 2, { timeout: 15_000, what: 'the client to be refused twice' });
      // Each refusal is a 200 that ends (EventSource sees open, then error): it reconnects, never CLOSED.
      expect(source.readyState).not.toBe(EventSource.CLOSED);
      expect(got).toEqual([]);
      // Redis comes back (empty: no persistence), then the web app's session with it.
      await redis.restart();
      await waitFor(() => client.isReady, { what: 'the test client to reconnect' });
      await client.set(key, saved.value, { PX: saved.pttl });
      await waitFor(async () => (await redis.numsub('bob')) > 0, {
        timeout: 15_000,
        what: "the eventsource client's stream to open (a subscriber on bob)",
      });
      await redis.publish('bob', JSON.stringify(['message', 'after the outage']));
      await waitFor(() => got.includes('after the outage'), { what: 'the event after the outage' });
    } finally {
      source.close();
      await redis.restart();
    }
  });
});
