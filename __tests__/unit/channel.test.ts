// core/channel.ts: what a channel name is (docs/protocol.md#channels) and how a channel list is parsed.
import { assertChannelName, isChannelName, MAX_CHANNEL_LENGTH, parseChannelList } from '../../src/core/channel';
import { ChannelNameError } from '../../src/core/errors';

describe('isChannelName', () => {
  test.each(['all', 'a', 'user_1', 'a.b', 'ns:chan', 'bob@example.com', 'a-b', 'A'.repeat(128)])('accepts %j', (name) =>
    expect(isChannelName(name)).toBe(true),
  );

  test.each(['', 'a b', '../x', 'a/b', 'a\nb', 'é', 'a,b', 'A'.repeat(129), ' all'])('rejects %j', (name) =>
    expect(isChannelName(name)).toBe(false),
  );

  test.each([undefined, null, 1, {}, ['all']])('rejects the non-string %j', (value) =>
    expect(isChannelName(value)).toBe(false),
  );
});

describe('assertChannelName', () => {
  test('returns a valid name', () => expect(assertChannelName('all')).toBe('all'));

  test('an empty name is a ChannelNameError (a TypeError) with code and status 400', () => {
    const err = catchError(() => assertChannelName(''));
    expect(err).toBeInstanceOf(ChannelNameError);
    expect(err).toBeInstanceOf(TypeError);
    expect(err).toMatchObject({ code: 'SSE_ERR_CHANNEL_NAME', status: 400 });
    expect((err as Error).message).toMatch(/empty/);
  });

  test('a too-long name says how long it is and what the limit is', () => {
    expect(() => assertChannelName('x'.repeat(MAX_CHANNEL_LENGTH + 1))).toThrow(
      /129 characters long; the limit is 128/,
    );
  });

  test.each(['a b', '../x'])('%j is named and the allowed characters are listed', (name) => {
    expect(() => assertChannelName(name)).toThrow(
      new RegExp(`${JSON.stringify(name).replace(/[.]/g, '\\.')} is not a valid channel name: use 1-128 characters`),
    );
  });

  test('a non-string says what type it got', () => {
    expect(() => assertChannelName(undefined)).toThrow('channel must be a string channel name, got undefined');
  });
});

describe('parseChannelList', () => {
  test('trims, drops empties and duplicates, keeps order', () => {
    expect(parseChannelList(' all, foo,,all ,bar', 64)).toEqual(['all', 'foo', 'bar']);
  });

  test('accepts several values (repeated query parameters)', () => {
    expect(parseChannelList(['a,b', 'c', 'a'], 64)).toEqual(['a', 'b', 'c']);
  });

  test.each([undefined, null, '', ' , ', []])('no channels (%j) → SSE_ERR_NO_CHANNELS', (raw) => {
    expect(catchError(() => parseChannelList(raw as string, 64))).toMatchObject({
      code: 'SSE_ERR_NO_CHANNELS',
      status: 400,
    });
  });

  test('one invalid name refuses the whole list', () => {
    expect(catchError(() => parseChannelList('all,a b', 64))).toMatchObject({ code: 'SSE_ERR_CHANNEL_NAME' });
  });

  test('exactly max channels pass; one more is SSE_ERR_TOO_MANY_CHANNELS', () => {
    const names = Array.from({ length: 65 }, (_, i) => `c${i}`);
    expect(parseChannelList(names.slice(0, 64).join(','), 64)).toHaveLength(64);
    const err = catchError(() => parseChannelList(names.join(','), 64));
    expect(err).toMatchObject({ code: 'SSE_ERR_TOO_MANY_CHANNELS', status: 400 });
    expect((err as Error).message).toMatch(/65 channels asked for; at most 64/);
  });

  test('duplicates do not count against the limit', () => {
    expect(parseChannelList(['a', 'a', 'a', 'b'], 2)).toEqual(['a', 'b']);
  });
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}
