// core/event.ts: toEvent() is where user input becomes an SseEvent.
import { EventError } from '../../src/core/errors';
import { DEFAULT_EVENT, isEventId, isEventName, toEvent } from '../../src/core/event';

describe('toEvent', () => {
  test('keeps string data verbatim', () => {
    expect(toEvent('message', '{"type": "message"}')).toEqual({ event: 'message', data: '{"type": "message"}' });
  });

  test.each([
    [{ type: 'message', user: 'tug' }, '{"type":"message","user":"tug"}'],
    [[1, 2], '[1,2]'],
    [42, '42'],
    [true, 'true'],
    [null, 'null'],
  ])('JSON-encodes the non-string %j', (data, expected) => {
    expect(toEvent('update', data).data).toBe(expected);
  });

  test('a missing type defaults to message', () => {
    expect(toEvent(undefined, 'x').event).toBe(DEFAULT_EVENT);
    expect(toEvent(null, 'x').event).toBe('message');
  });

  test.each(['a\nb', 'a\rb', 'a\r\nb'])('an event name with a line break (%j) is an EventError', (type) => {
    const err = catchError(() => toEvent(type, 'x'));
    expect(err).toBeInstanceOf(EventError);
    expect(err).toBeInstanceOf(TypeError);
    expect(err).toMatchObject({ code: 'SSE_ERR_EVENT', status: 400 });
    expect((err as Error).message).toMatch(/line break/);
  });

  test.each(['', 5, {}])('a type that is not a non-empty string (%j) is refused', (type) => {
    expect(() => toEvent(type, 'x')).toThrow(EventError);
  });

  test('undefined data is refused, saying what to pass', () => {
    expect(() => toEvent('message', undefined)).toThrow(/data is required/);
  });

  test('unserialisable data is refused', () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(() => toEvent('message', circular)).toThrow(/not JSON-serialisable/);
    expect(() => toEvent('message', () => 1)).toThrow(/not JSON-serialisable/);
    expect(() => toEvent('message', 10n)).toThrow(/not JSON-serialisable/);
  });

  test('ids: strings and finite numbers are kept; CR, LF and NUL are refused', () => {
    expect(toEvent('m', 'x', 'abc-1').id).toBe('abc-1');
    expect(toEvent('m', 'x', 7).id).toBe('7');
    expect(toEvent('m', 'x', null)).not.toHaveProperty('id');
    for (const bad of ['a\nb', 'a\rb', 'a\0b', Infinity, {}]) expect(() => toEvent('m', 'x', bad)).toThrow(EventError);
  });
});

test('isEventName / isEventId', () => {
  expect(isEventName('message')).toBe(true);
  expect(isEventName('')).toBe(false);
  expect(isEventName('a\nb')).toBe(false);
  expect(isEventId('')).toBe(true);
  expect(isEventId('1\0')).toBe(false);
  expect(isEventId(1)).toBe(false);
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}
