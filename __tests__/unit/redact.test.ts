// core/redact.ts: the credentials of every URL in a printed line become ***.
import { redactUrls } from '../../src/core/redact';

test.each([
  ['cannot reach Redis at redis://user:PASSWORD@h:6379: refused', 'cannot reach Redis at redis://***@h:6379: refused'],
  ['redis://:PASSWORD@h', 'redis://***@h'],
  ['rediss://default:PA%40SS@h:1/0', 'rediss://***@h:1/0'],
  ['raw @ in it: redis://u:PASS@WORD@h:1', 'raw @ in it: redis://***@h:1'],
  ['{"url":"https://u:PASSWORD@x/sse/_probe"}', '{"url":"https://***@x/sse/_probe"}'],
  ['two: redis://a:PASSWORD@h and http://b:PASSWORD@k/', 'two: redis://***@h and http://***@k/'],
])('%s', (text, redacted) => {
  expect(redactUrls(text)).toBe(redacted);
  expect(redactUrls(text)).not.toContain('PASSWORD');
});

test('text without credentials is unchanged', () => {
  for (const text of [
    'redis://127.0.0.1:6379',
    'http://h/path@x?q=a@b',
    'mail me: a@b.example',
    'listening on http://[::1]:8888/',
  ]) {
    expect(redactUrls(text)).toBe(text);
  }
});
