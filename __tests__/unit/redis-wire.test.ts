// brokers/redis-wire.ts: the django_sse payload ⇄ SseEvent (docs/protocol.md). Never throws.
import { decodePayload, encodePayload } from '../../src/brokers/redis-wire';

describe('decodePayload', () => {
  test('the tornado-sse README payload', () => {
    expect(decodePayload('["message", "{\\"type\\": \\"message\\", \\"user\\": \\"tug\\"}"]')).toEqual({
      event: { event: 'message', data: '{"type": "message", "user": "tug"}' },
      wellFormed: true,
    });
  });

  test('a three-element array sets the id (string or number)', () => {
    expect(decodePayload('["update", "x", "17"]').event).toEqual({ event: 'update', data: 'x', id: '17' });
    expect(decodePayload('["update", "x", 17]').event).toEqual({ event: 'update', data: 'x', id: '17' });
  });

  test('regression: a 200,000-deep JSON array is delivered raw and flagged, never thrown', () => {
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    for (const raw of [deep, `["message", ${deep}]`, `["message", ${deep}, "1"]`]) {
      expect(decodePayload(raw)).toEqual({ event: { event: 'message', data: raw }, wellFormed: false });
    }
  });

  test('a null id means no id', () => {
    expect(decodePayload('["m", "x", null]').event).toEqual({ event: 'm', data: 'x' });
  });

  test.each([
    ['{"a": 1}', '{"a":1}'],
    ['[1, 2]', '[1,2]'],
    ['42', '42'],
    ['null', 'null'],
    ['true', 'true'],
  ])('non-string data %s is JSON-encoded', (json, expected) => {
    expect(decodePayload(`["m", ${json}]`)).toEqual({ event: { event: 'm', data: expected }, wellFormed: true });
  });

  test('multi-line data is kept as is (the frame splits it)', () => {
    expect(decodePayload(JSON.stringify(['m', 'a\nb\r\nc'])).event.data).toBe('a\nb\r\nc');
  });

  test.each([
    ['plain text', 'hello world'],
    ['a JSON object', '{"event": "m", "data": "x"}'],
    ['broken JSON', '["message", "x"'],
    ['a one-element array', '["message"]'],
    ['a four-element array', '["m", "x", "1", "extra"]'],
    ['a non-string event name', '[1, "x"]'],
    ['an empty event name', '["", "x"]'],
    ['an event name with a newline', '["a\\nb", "x"]'],
    ['an id with a newline', '["m", "x", "1\\n2"]'],
    ['an id that is an object', '["m", "x", {}]'],
    ['an empty payload', ''],
  ])('%s is delivered raw as `message`', (_what, raw) => {
    expect(decodePayload(raw)).toEqual({ event: { event: 'message', data: raw }, wellFormed: false });
  });

  test('a 1 MiB payload of plain text is delivered raw, whole', () => {
    const raw = 'z'.repeat(1024 * 1024);
    const decoded = decodePayload(raw);
    expect(decoded.wellFormed).toBe(false);
    expect(decoded.event.data).toHaveLength(1024 * 1024);
  });

  test('a 1 MiB django_sse array decodes', () => {
    const data = 'z'.repeat(1024 * 1024);
    expect(decodePayload(JSON.stringify(['big', data])).event).toEqual({ event: 'big', data });
  });
});

describe('encodePayload', () => {
  test('two elements without id, three with', () => {
    expect(encodePayload({ event: 'message', data: '{"type":"message"}' })).toBe(
      '["message","{\\"type\\":\\"message\\"}"]',
    );
    expect(encodePayload({ event: 'm', data: 'x', id: '5' })).toBe('["m","x","5"]');
  });

  test('round-trips through decodePayload', () => {
    for (const event of [
      { event: 'm', data: 'a\nb' },
      { event: 'x.y', data: '', id: '1-0' },
    ]) {
      expect(decodePayload(encodePayload(event))).toEqual({ event, wellFormed: true });
    }
  });
});
