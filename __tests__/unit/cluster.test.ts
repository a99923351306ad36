// resolveWorkers (issue 6): how many processes sse-runserver starts.
import os from 'node:os';
import { resolveWorkers } from '../../src/cli/cluster';

test('with Redis the default is one worker per core', () => {
  expect(resolveWorkers(undefined, true)).toBe(Math.max(1, os.availableParallelism()));
});

test('with Redis the flag wins', () => {
  expect(resolveWorkers(3, true)).toBe(3);
  expect(resolveWorkers(1, true)).toBe(1);
});

test('with the memory broker the default is one worker, and one is allowed', () => {
  expect(resolveWorkers(undefined, false)).toBe(1);
  expect(resolveWorkers(1, false)).toBe(1);
});

test('with the memory broker more than one worker is refused with a message naming the fix', () => {
  const refused = resolveWorkers(2, false);
  expect(typeof refused).toBe('string');
  expect(refused).toMatch(/^--workers 2 needs the redis broker \(--redis URL or REDIS_URL\)/);
});
