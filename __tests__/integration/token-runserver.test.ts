// Token mode through the real CLI (docs/tokens.md): `sse-runserver --channels
// token` takes the token from the cookie, Authorization: Bearer or ?token=,
// refuses bad tokens with 403 JSON, lets the query narrow but never widen the
// grant, ends open streams at `exp`, accepts `publish` claims on POST /publish,
// and answers CORS only for --cors-origin. Real processes, raw HTTP clients.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { RUNSERVER, runNode, startRunserver, type RunningServer } from '../helpers/run-cli';
import { SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

const SECRET = 'current-secret-of-at-least-32-bytes';
const OLD_SECRET = 'previous-secret-of-at-least-32-bytes';
const PAGE_ORIGIN = 'http://page.example:8000';
const now = (): number => Math.floor(Date.now() / 1000);

function sign(claims: Record<string, unknown>, key: string | KeyObject = SECRET, alg = 'HS256'): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg })
    .sign(typeof key === 'string' ? new TextEncoder().encode(key) : key);
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('sse-runserver --channels token', () => {
  let sse: RunningServer;
  let dir: string;
  let rsa: { publicKey: KeyObject; privateKey: KeyObject };
  const readers: SseReader[] = [];

  async function open(query: string, headers: Record<string, string> = {}): Promise<SseReader> {
    const reader = await SseReader.open(`${sse.url}/${query}`, headers);
    readers.push(reader);
    return reader;
  }

  async function expectRefused(reader: SseReader, status: number, pattern: RegExp): Promise<void> {
    expect(reader.status).toBe(status);
    expect(reader.headers['content-type']).toMatch(/^application\/json/);
    await reader.waitForEnd();
    expect(JSON.parse(reader.body)).toEqual({ error: expect.stringMatching(pattern) });
  }

  function publish(channel: string, data: unknown, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(`${sse.url}/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ channel, event: 'message', data }),
    });
  }

  /** Publishes from loopback once the stream listens (the memory broker keeps nothing for later). */
  async function publishWhenOpen(channel: string, data: unknown): Promise<void> {
    await waitFor(
      async () => (await fetch(`${sse.url}/metrics`).then((r) => r.text())).includes('sse_hub_connections 1'),
      {
        what: 'the stream to be attached',
      },
    );
    expect((await publish(channel, data)).status).toBe(202);
  }

  const metrics = (): Promise<string> => fetch(`${sse.url}/metrics`).then((r) => r.text());

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sse-token-'));
    rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyFile = join(dir, 'key.pem');
    writeFileSync(keyFile, rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string);
    sse = await startRunserver(
      [
        '--channels',
        'token',
        '--token-secret',
        `${SECRET},${OLD_SECRET}`,
        '--token-public-key',
        keyFile,
        '--cors-origin',
        PAGE_ORIGIN,
        '--metrics',
        '--retry',
        '500',
      ],
      {},
    );
  });

  afterEach(() => {
    for (const reader of readers.splice(0)) reader.close();
  });

  afterAll(async () => {
    await sse?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the cookie (sse_token), a Bearer header and ?token= each open the channels of the claim', async () => {
    const token = await sign({ sub: 'bob', exp: now() + 60, channels: ['bob', 'all'] });
    for (const [query, headers] of [
      ['', { cookie: `sse_token=${token}` }],
      ['', { authorization: `Bearer ${token}` }],
      [`?token=${token}`, {}],
    ] as const) {
      const reader = await open(query, headers);
      expect(reader.status).toBe(200);
      await publishWhenOpen('bob', 'for bob');
      expect((await reader.waitForEvents(1))[0]?.data).toBe('for bob');
      reader.close();
      await waitFor(async () => (await metrics()).includes('sse_hub_connections 0'), { what: 'the stream to close' });
    }
  });

  test('rotation: the old secret and the RS256 public key are accepted too', async () => {
    for (const token of [
      await sign({ exp: now() + 60, channels: ['all'] }, OLD_SECRET),
      await sign({ exp: now() + 60, channels: ['all'] }, rsa.privateKey, 'RS256'),
    ]) {
      const reader = await open(`?token=${token}`);
      expect(reader.status).toBe(200);
      reader.close();
    }
  });

  test('403 JSON for no token, alg none, a tampered, expired or wrongly signed token', async () => {
    await expectRefused(await open(''), 403, /no token: send it in the "sse_token" cookie/);
    const unsigned = `${b64({ alg: 'none' })}.${b64({ exp: now() + 60, channels: ['all'] })}.`;
    await expectRefused(await open(`?token=${unsigned}`), 403, /alg "none"/);
    const good = await sign({ exp: now() + 60, channels: ['bob'] });
    const [h, , s] = good.split('.');
    const tampered = `${h}.${b64({ exp: now() + 60, channels: ['bob', 'admin'] })}.${s}`;
    await expectRefused(await open('', { cookie: `sse_token=${tampered}` }), 403, /signature does not match/);
    const expired = await sign({ exp: now() - 10, channels: ['bob'] });
    await expectRefused(await open('', { authorization: `Bearer ${expired}` }), 403, /expired/);
    const foreign = await sign({ exp: now() + 60, channels: ['bob'] }, 'a-secret-nobody-gave-this-server!');
    await expectRefused(await open(`?token=${foreign}`), 403, /signature does not match/);
    expect(await metrics()).toMatch(/^sse_hub_tokens_refused_total [4-9]/m);
  });

  test('the query narrows the grant but never widens it (403, as in session mode)', async () => {
    const token = await sign({ exp: now() + 60, channels: ['bob', 'all', 'team-*'] });
    const narrowed = await open(`?channels=team-7&token=${token}`);
    expect(narrowed.status).toBe(200);
    await publishWhenOpen('bob', 'not asked for');
    expect((await publish('team-7', 'team news')).status).toBe(202);
    expect((await narrowed.waitForEvents(1)).map((e) => e.data)).toEqual(['team news']);
    await expectRefused(await open(`?channels=bob,admin&token=${token}`), 403, /"admin".*does not grant/);
  });

  test('an open stream ends cleanly at exp; reconnecting with the same token is refused', async () => {
    const token = await sign({ sub: 'bob', exp: now() + 2, channels: ['bob'] });
    const reader = await open(`?token=${token}`);
    expect(reader.status).toBe(200);
    await reader.waitForEnd(5000);
    expect(reader.raw).toMatch(/^retry: 500\n/);
    expect(await metrics()).toMatch(/^sse_hub_token_streams_expired_total 1$/m);
    await expectRefused(await open(`?token=${token}`), 403, /expired/);
  });

  test('a publish claim lets a bearer publish to its channels only, from any address', async () => {
    const forwarded = { 'x-forwarded-for': '203.0.113.9' }; // not trusted as local
    expect((await publish('bob', 'x', forwarded)).status).toBe(403);
    const publisher = await sign({ exp: now() + 60, publish: ['bob', 'team-*'] });
    const auth = { ...forwarded, authorization: `Bearer ${publisher}` };
    expect((await publish('bob', 'x', auth)).status).toBe(202);
    expect((await publish('team-3', 'x', auth)).status).toBe(202);
    const refused = await publish('all', 'x', auth);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ error: expect.stringMatching(/may not publish to channel "all"/) });
    const listener = await sign({ exp: now() + 60, channels: ['bob'] });
    const noClaim = await publish('bob', 'x', { ...forwarded, authorization: `Bearer ${listener}` });
    expect(noClaim.status).toBe(403);
    expect(await noClaim.json()).toEqual({ error: expect.stringMatching(/no "publish" claim/) });
  });

  test('CORS: the listed origin gets preflights and credentials headers; others get none', async () => {
    const pre = await fetch(`${sse.url}/`, {
      method: 'OPTIONS',
      headers: {
        origin: PAGE_ORIGIN,
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'last-event-id',
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(PAGE_ORIGIN);
    expect(pre.headers.get('access-control-allow-credentials')).toBe('true');
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/Last-Event-ID/);

    const token = await sign({ exp: now() + 60, channels: ['all'] });
    const allowed = await open(`?token=${token}`, { origin: PAGE_ORIGIN });
    expect(allowed.status).toBe(200);
    expect(allowed.headers['access-control-allow-origin']).toBe(PAGE_ORIGIN);
    expect(allowed.headers['access-control-allow-credentials']).toBe('true');

    const other = await open(`?token=${token}`, { origin: 'http://evil.example' });
    expect(other.status).toBe(200);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    expect(other.headers['access-control-allow-credentials']).toBeUndefined();
    const otherPre = await fetch(`${sse.url}/`, {
      method: 'OPTIONS',
      headers: { origin: 'http://evil.example', 'access-control-request-method': 'GET' },
    });
    expect(otherPre.status).toBe(403);
    expect(otherPre.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('sse-runserver token mode from the environment', () => {
  test('SSE_CHANNELS, SSE_TOKEN_SECRET (a rotation list) and SSE_CORS_ORIGIN', async () => {
    const server = await startRunserver([], {
      SSE_CHANNELS: 'token',
      SSE_TOKEN_SECRET: `${SECRET},${OLD_SECRET}`,
      SSE_CORS_ORIGIN: PAGE_ORIGIN,
    });
    try {
      const token = await sign({ exp: now() + 60, channels: ['all'] }, OLD_SECRET);
      const reader = await SseReader.open(`${server.url}/?token=${token}`, { origin: PAGE_ORIGIN });
      expect(reader.status).toBe(200);
      expect(reader.headers['access-control-allow-origin']).toBe(PAGE_ORIGIN);
      reader.close();
    } finally {
      await server.stop();
    }
  });
});

describe('sse-runserver token and CORS flags', () => {
  test.each([
    [['--channels', 'token'], /needs --token-secret/],
    [['--channels', 'token', '--token-secret', 'short'], /at least 32 bytes/],
    [['--token-secret', SECRET], /--token-secret needs --channels token/],
    [
      ['--channels', 'token', '--token-public-key', '/nonexistent.pem'],
      /--token-public-key \/nonexistent\.pem: ENOENT/,
    ],
    [['--channels', 'token', '--token-secret', ` ${SECRET}`], /spaces around it.*SSE_TOKEN_SECRETS/],
    [['--channels', 'token', '--token-secret', `${SECRET},,${OLD_SECRET}`], /empty item/],
    [['--cors-origin', '*'], /--cors-origin: the CORS origin "\*" is refused/],
    [['--cors-origin', 'https://app.example/page'], /drop the path/],
  ])('%j exits 2 with one line', async (args, message) => {
    const result = await runNode(RUNSERVER, ['--port', '0', ...args]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).not.toContain(SECRET);
  });

  test('regression: token secrets are used verbatim; SSE_TOKEN_SECRETS (JSON array) carries one with commas and spaces', async () => {
    const odd = ' a token secret, with a comma, of 32+ bytes ';
    const bad = await runNode(RUNSERVER, ['--port', '0', '--channels', 'token'], { SSE_TOKEN_SECRETS: 'not json' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/SSE_TOKEN_SECRETS must be a JSON array/);
    const server = await startRunserver(['--channels', 'token'], { SSE_TOKEN_SECRETS: JSON.stringify([odd]) });
    try {
      const claims = { channels: ['news'], exp: now() + 60 };
      const good = await SseReader.open(`${server.url}/`, { authorization: `Bearer ${await sign(claims, odd)}` });
      expect(good.status).toBe(200);
      good.close();
      // Trimmed, it is another secret: a token signed with it does not verify.
      const trimmed = await SseReader.open(`${server.url}/`, {
        authorization: `Bearer ${await sign(claims, odd.trim())}`,
      });
      expect(trimmed.status).toBe(403);
      trimmed.close();
    } finally {
      await server.stop();
    }
  });
});
