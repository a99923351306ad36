// http/resolvers.ts: which channels a request listens on (docs/api.md).
import type { IncomingMessage } from 'node:http';
import { HttpError } from '../../src/core/errors';
import {
  channelsForUser,
  defaultGetUser,
  fromQuery,
  fromSession,
  getUserAt,
  queryOf,
  userChannelPrefix,
} from '../../src/http/resolvers';

const req = (url: string, session?: unknown): IncomingMessage => ({ url, session }) as unknown as IncomingMessage;

describe('fromQuery', () => {
  test('?channels=all,foo', async () => {
    expect(await fromQuery()(req('/?channels=all,foo'))).toEqual(['all,foo']);
  });

  test('repeated parameters are all returned (validation and dedupe happen in parseChannelList)', async () => {
    expect(await fromQuery()(req('/?channels=a&channels=b,c'))).toEqual(['a', 'b,c']);
  });

  test('a custom parameter name', async () => {
    expect(await fromQuery({ param: 'c' })(req('/sse?c=x&channels=y'))).toEqual(['x']);
  });

  test('absent, empty or only commas → the default, else nothing', async () => {
    expect(await fromQuery()(req('/'))).toEqual([]);
    expect(await fromQuery({ default: ['all'] })(req('/'))).toEqual(['all']);
    expect(await fromQuery({ default: ['all'] })(req('/?channels='))).toEqual(['all']);
    expect(await fromQuery({ default: ['all'] })(req('/?channels=,%20,'))).toEqual(['all']);
  });

  test('URL-decoding: `a b` arrives as such, to be refused later', async () => {
    expect(await fromQuery()(req('/?channels=a%20b'))).toEqual(['a b']);
  });
});

describe('fromSession', () => {
  test("subscribes the session's user to [username, 'all']", async () => {
    expect(await fromSession()(req('/', { user: { username: 'tug' } }))).toEqual(['tug', 'all']);
  });

  test('?channels= naming the own channels changes nothing', async () => {
    expect(await fromSession()(req('/?channels=all,tug', { username: 'tug' }))).toEqual(['tug', 'all']);
  });

  // docs/sessions.md: the query string cannot add channels in session mode;
  // more precisely, a queried channel outside the session's is refused (403)
  // rather than dropped; either way it is never listened on.
  test('?channels= cannot add a channel', async () => {
    const result = await Promise.resolve(fromSession()(req('/?channels=secret', { username: 'tug' }))).catch(
      (e: unknown) => e,
    );
    if (Array.isArray(result)) expect(result).toEqual(['tug', 'all']);
    else expect(result).toMatchObject({ status: 403 });
  });

  test('a session without a user → 403 SSE_ERR_ANONYMOUS', async () => {
    for (const session of [null, {}, { user: {} }, { username: '' }]) {
      const err = await Promise.resolve(fromSession()(req('/?channels=all', session))).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HttpError);
      expect(err).toMatchObject({ status: 403, code: 'SSE_ERR_ANONYMOUS' });
    }
  });

  test('no req.session at all (express-session not mounted) → 500 SSE_ERR_NO_SESSION naming the fix', async () => {
    const err = await Promise.resolve(fromSession()(req('/?channels=all', undefined))).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 500, code: 'SSE_ERR_NO_SESSION' });
    expect((err as Error).message).toMatch(
      /mount express-session before sseMiddleware\(\).*, or pass channels: fromQuery\(\)/,
    );
  });

  test('a custom (async) getUser', async () => {
    const resolver = fromSession({ getUser: async (s) => (s.uid as string | undefined) ?? undefined });
    expect(await resolver(req('/', { uid: 'u1' }))).toEqual(['u1', 'all']);
  });
});

describe('channelsForUser', () => {
  test('a username that is not a valid channel name → 403 SSE_ERR_FORBIDDEN', () => {
    for (const user of ['a b', '../x', 'x'.repeat(129)]) {
      expect(() => channelsForUser(user)).toThrow(expect.objectContaining({ status: 403, code: 'SSE_ERR_FORBIDDEN' }));
    }
    expect(() => channelsForUser(42)).toThrow(expect.objectContaining({ status: 403 }));
  });

  test("the user `all` listens on 'all' once", () => {
    expect(channelsForUser('all')).toEqual(['all']);
  });
});

describe('defaultGetUser', () => {
  test('session.user.username, then session.username, then session.passport.user', () => {
    expect(defaultGetUser({ user: { username: 'a' }, username: 'b', passport: { user: 'c' } })).toBe('a');
    expect(defaultGetUser({ username: 'b', passport: { user: 'c' } })).toBe('b');
    expect(defaultGetUser({ passport: { user: 'c' } })).toBe('c');
    expect(defaultGetUser({ passport: { user: 7 } })).toBeUndefined();
    expect(defaultGetUser({})).toBeUndefined();
  });
});

describe('user channels in session mode', () => {
  const as = (username: string, url = '/'): IncomingMessage => req(url, { user: { username } });

  test('by default the own channel is the bare username (django_sse)', async () => {
    expect(await fromSession()(as('bob'))).toEqual(['bob', 'all']);
  });

  test("userChannel: userChannelPrefix('user:') gives user:bob; authorize still sees the username", async () => {
    const seen: string[] = [];
    const resolve = fromSession({
      userChannel: userChannelPrefix('user:'),
      publicChannels: ['news'],
      authorize: (_req, channel, user) => (seen.push(`${user}:${channel}`), channel === 'team-red'),
    });
    expect(await resolve(as('bob', '/?channels=news,team-red'))).toEqual(['user:bob', 'all', 'news', 'team-red']);
    expect(seen).toEqual(['bob:team-red']);
    expect(await fromSession({ userChannel: (u) => `u.${u}` })(as('bob'))).toEqual(['u.bob', 'all']);
  });

  test('regression: a user whose name equals a public channel is refused with 403', async () => {
    const resolve = fromSession({ publicChannels: ['news', 'team-red'] });
    for (const url of ['/', '/?channels=news']) {
      await expect(resolve(as('team-red', url))).rejects.toMatchObject({
        status: 403,
        code: 'SSE_ERR_FORBIDDEN',
        message: expect.stringMatching(/also a public channel.*prefix/),
      });
    }
    // The remedy: with a prefix the same user has a channel of their own.
    const prefixed = fromSession({ publicChannels: ['news', 'team-red'], userChannel: userChannelPrefix('user:') });
    expect(await prefixed(as('team-red', '/?channels=team-red'))).toEqual(['user:team-red', 'all', 'team-red']);
  });

  test('a mapping that gives an invalid channel name → 403; a bad prefix fails at once', async () => {
    await expect(fromSession({ userChannel: (u) => `${u} x` })(as('bob'))).rejects.toMatchObject({ status: 403 });
    expect(() => userChannelPrefix('user name:')).toThrow(TypeError);
    expect(() => fromSession({ userChannel: 'user:' as never })).toThrow(/userChannel must be a function/);
  });
});

test('getUserAt reads a dotted path', () => {
  expect(getUserAt('auth.user.name')({ auth: { user: { name: 'n' } } }, req('/'))).toBe('n');
  expect(getUserAt('auth.user.name')({ auth: null }, req('/'))).toBeUndefined();
});

test('queryOf', () => {
  expect(queryOf(req('/x?a=1&b=2')).get('b')).toBe('2');
  expect(queryOf({ url: undefined } as unknown as IncomingMessage).toString()).toBe('');
});
