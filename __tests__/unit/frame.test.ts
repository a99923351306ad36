// core/frame.ts: the SSE wire format of docs/protocol.md, byte for byte.
import { encodeComment, encodeFrame, encodePreamble, PING_FRAME } from '../../src/core/frame';

const text = (b: Buffer): string => b.toString('utf8');

describe('encodeFrame', () => {
  test('event and one data line, ended by a blank line', () => {
    expect(text(encodeFrame({ event: 'message', data: '{"type": "message", "user": "tug"}' }))).toBe(
      'event: message\ndata: {"type": "message", "user": "tug"}\n\n',
    );
  });

  test('id first when the event has one', () => {
    expect(text(encodeFrame({ event: 'update', data: 'x', id: '42' }))).toBe('id: 42\nevent: update\ndata: x\n\n');
  });

  test('an empty id is still written (it resets the last event id)', () => {
    expect(text(encodeFrame({ event: 'm', data: 'x', id: '' }))).toBe('id: \nevent: m\ndata: x\n\n');
  });

  test('data is split on \\r\\n, \\r and \\n: one data line each', () => {
    expect(text(encodeFrame({ event: 'm', data: 'a\r\nb\rc\nd' }))).toBe(
      'event: m\ndata: a\ndata: b\ndata: c\ndata: d\n\n',
    );
  });

  test('empty lines in data are kept, including leading and trailing ones', () => {
    expect(text(encodeFrame({ event: 'm', data: '\na\n\n' }))).toBe('event: m\ndata: \ndata: a\ndata: \ndata: \n\n');
  });

  test('empty data is one empty data line', () => {
    expect(text(encodeFrame({ event: 'm', data: '' }))).toBe('event: m\ndata: \n\n');
  });

  test('UTF-8 bytes', () => {
    const frame = encodeFrame({ event: 'm', data: 'héllo ✓' });
    expect(frame).toBeInstanceOf(Buffer);
    expect(frame.equals(Buffer.from('event: m\ndata: héllo ✓\n\n', 'utf8'))).toBe(true);
  });

  test('a 1 MiB event is framed whole', () => {
    const data = 'x'.repeat(1024 * 1024);
    expect(encodeFrame({ event: 'm', data }).length).toBe('event: m\ndata: \n\n'.length + data.length);
  });
});

test('encodePreamble: retry line then a comment', () => {
  expect(text(encodePreamble(3000))).toBe('retry: 3000\n: sse-hub\n\n');
});

test('encodeComment: a comment frame', () => {
  expect(text(encodeComment('hello'))).toBe(': hello\n\n');
});

// Regression: only the first line break was replaced, so 'a\nb\nc' ended the
// comment early and sent `c` as a field line.
test('encodeComment: every line break is flattened, so the text stays one comment line', () => {
  expect(text(encodeComment('a\nb\r\nc\rd'))).toBe(': a b c d\n\n');
});

test('PING_FRAME is the `: ping` comment', () => {
  expect(text(PING_FRAME)).toBe(': ping\n\n');
});
