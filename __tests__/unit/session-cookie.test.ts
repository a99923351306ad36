// session-cookie.ts without sockets: the cookie → sid rules express-session
// uses, expiry, option validation, and the batched re-check over a stub store.
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { sign } from 'cookie-signature';
import type { Connection } from '../../src/core/connection';
import type { SessionKeyReader } from '../../src/core/broker';
import { fromSessionCookie, parseSession, sessionIdOf } from '../../src/http/session-cookie';

function req(cookie?: string, url = '/'): IncomingMessage {
  const r = new IncomingMessage(new Socket());
  r.url = url;
  if (cookie !== undefined) r.headers.cookie = cookie;
  return r;
}

const cookieFor = (sid: string, secret: string, name = 'connect.sid'): string =>
  `${name}=${encodeURIComponent(`s:${sign(sid, secret)}`)}`;

/** A stub key-value store that records every MGET. */
class StubStore implements SessionKeyReader {
  isReady = true;
  calls: string[][] = [];
  data = new Map<string, string>();
  async mGet(keys: string[]): Promise<(string | null)[]> {
    this.calls.push(keys);
    return keys.map((k) => this.data.get(k) ?? null);
  }
}

/** Just enough of a Connection for the re-check: its request, its response's close, end(). */
function fakeConnection(r: IncomingMessage): Connection & { ended: string | undefined } {
  const listeners: (() => void)[] = [];
  const connection = {
    req: r,
    ended: undefined as string | undefined,
    res: { once: (_event: string, fn: () => void) => listeners.push(fn) },
    end(reason: string) {
      this.ended = reason;
      for (const fn of listeners) fn();
    },
  };
  return connection as unknown as Connection & { ended: string | undefined };
}

describe('sessionIdOf', () => {
  test('a cookie signed with any secret of the list gives the sid', () => {
    expect(sessionIdOf(req(cookieFor('abc', 'old')), 'connect.sid', ['new', 'old'])).toBe('abc');
    expect(sessionIdOf(req(`x=1; ${cookieFor('abc', 'k', 'sid')}`), 'sid', ['k'])).toBe('abc');
  });

  test('no cookie → 403 SSE_ERR_ANONYMOUS; tampered, foreign or unsigned → 403 SSE_ERR_FORBIDDEN', () => {
    expect(() => sessionIdOf(req(), 'connect.sid', ['k'])).toThrow(
      expect.objectContaining({ status: 403, code: 'SSE_ERR_ANONYMOUS' }),
    );
    for (const cookie of [
      cookieFor('abc', 'other'),
      'connect.sid=s%3Aabc.notasignature',
      'connect.sid=abc',
      cookieFor('abc', 'k').replace('abc', 'abd'),
    ]) {
      expect(() => sessionIdOf(req(cookie), 'connect.sid', ['k'])).toThrow(
        expect.objectContaining({ status: 403, code: 'SSE_ERR_FORBIDDEN' }),
      );
    }
  });
});

describe('parseSession', () => {
  test('JSON objects only; expired cookies count as missing', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(parseSession(JSON.stringify({ user: { username: 'a' } }), now)).toEqual({ user: { username: 'a' } });
    expect(parseSession(Buffer.from('{"a":1}'), now)).toEqual({ a: 1 });
    for (const raw of [null, undefined, 'not json', '[]', '"s"', 42]) expect(parseSession(raw, now)).toBeUndefined();
    const at = (expires: string): string => JSON.stringify({ cookie: { expires }, username: 'a' });
    expect(parseSession(at('2029-12-31T23:59:59Z'), now)).toBeUndefined();
    expect(parseSession(at('2030-01-01T00:00:01Z'), now)).toMatchObject({ username: 'a' });
  });

  test('regression: a cookie.expires that is not a date counts as expired (fail closed)', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    const withExpires = (expires: unknown): string => JSON.stringify({ cookie: { expires }, username: 'a' });
    for (const bad of ['not a date', '', 1e15, true, {}, []]) {
      expect({ expires: bad, session: parseSession(withExpires(bad), now) }).toEqual({
        expires: bad,
        session: undefined,
      });
    }
    // No expiry at all (null: a browser-session cookie) is still a live session.
    expect(parseSession(withExpires(null), now)).toMatchObject({ username: 'a' });
    expect(parseSession(JSON.stringify({ cookie: {}, username: 'a' }), now)).toMatchObject({ username: 'a' });
  });
});

describe('fromSessionCookie', () => {
  test('options are validated when it is created', () => {
    const store = new StubStore();
    expect(() => fromSessionCookie({ secrets: [], store })).toThrow(/secrets must be a non-empty list/);
    expect(() => fromSessionCookie({ secrets: [''], store })).toThrow(TypeError);
    expect(() => fromSessionCookie({ secrets: ['k'], store, recheck: -1 })).toThrow(/recheck/);
    expect(() => fromSessionCookie({ secrets: ['k'], store, publicChannels: ['a b'] })).toThrow(TypeError);
  });

  test('reads `<prefix><sid>` with one MGET and resolves the channels; the store down → 503', async () => {
    const store = new StubStore();
    store.data.set('p:abc', JSON.stringify({ user: { username: 'bob' } }));
    const resolver = fromSessionCookie({ secrets: ['k'], store, prefix: 'p:', publicChannels: ['news'] });
    expect(await resolver(req(cookieFor('abc', 'k'), '/?channels=news'))).toEqual(['bob', 'all', 'news']);
    expect(store.calls).toEqual([['p:abc']]);
    await expect(resolver(req(cookieFor('abc', 'k'), '/?channels=admin'))).rejects.toMatchObject({ status: 403 });
    await expect(resolver(req(cookieFor('gone', 'k')))).rejects.toMatchObject({
      status: 403,
      code: 'SSE_ERR_ANONYMOUS',
    });
    store.isReady = false;
    await expect(resolver(req(cookieFor('abc', 'k')))).rejects.toMatchObject({ status: 503 });
    resolver.close();
  });

  test('the re-check reads every watched session in batches and ends only logged-out or changed ones', async () => {
    const store = new StubStore();
    const resolver = fromSessionCookie({ secrets: ['k'], store, recheck: 3_600_000 });
    const connections = new Map<string, Connection & { ended: string | undefined }>();
    for (let i = 0; i < 450; i++) {
      const sid = `sid${i}`;
      store.data.set(`sess:${sid}`, JSON.stringify({ username: `u${i}` }));
      const r = req(cookieFor(sid, 'k'));
      await resolver(r);
      const connection = fakeConnection(r);
      resolver.attached?.(r, connection);
      connections.set(sid, connection);
    }
    expect(resolver.watching).toBe(450);
    store.data.delete('sess:sid7'); // logged out
    store.data.set('sess:sid8', JSON.stringify({ username: 'someone-else' })); // a different user now
    store.data.set('sess:sid9', JSON.stringify({ visits: 2 })); // logged out, session kept
    store.calls = [];

    await resolver.recheck();
    expect(store.calls.map((keys) => keys.length)).toEqual([200, 200, 50]);
    const ended = [...connections].filter(([, c]) => c.ended !== undefined).map(([sid, c]) => [sid, c.ended]);
    expect(ended).toEqual([
      ['sid7', 'server'],
      ['sid8', 'server'],
      ['sid9', 'server'],
    ]);
    expect(resolver.watching).toBe(447);

    // Store down: nothing is ended (fail open for streams already verified).
    store.isReady = false;
    store.data.clear();
    await resolver.recheck();
    expect(resolver.watching).toBe(447);
    resolver.close();
  });
});
