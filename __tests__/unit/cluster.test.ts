// resolveWorkers: how many processes sse-runserver starts; combineHealth: the server-wide /healthz.
import os from 'node:os';
import { combineHealth, resolveWorkers } from '../../src/cli/cluster';

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

describe('combineHealth: the server is healthy only when every listening worker says so', () => {
  const workers = [
    { id: 1, pid: 101 },
    { id: 2, pid: 102 },
  ];
  test('all healthy: ok, with the number of workers that answered', () => {
    const answers = new Map([
      [1, { ok: true, broker: 'redis' }],
      [2, { ok: true, broker: 'redis' }],
    ]);
    expect(combineHealth(workers, answers)).toEqual({ ok: true, broker: 'redis', workers: 2 });
  });
  test('one worker down: not ok, naming it and its reason', () => {
    const answers = new Map([
      [1, { ok: true, broker: 'redis' }],
      [2, { ok: false, broker: 'redis', error: 'subscription down' }],
    ]);
    const report = combineHealth(workers, answers);
    expect(report.ok).toBe(false);
    expect(report.error).toBe('worker 102: subscription down');
  });
  test('a worker that did not answer counts as down', () => {
    const report = combineHealth(workers, new Map([[1, { ok: true, broker: 'redis' }]]));
    expect(report.ok).toBe(false);
    expect(report.error).toMatch(/worker 102 did not answer/);
  });
  test('no worker listening yet: not ok', () => {
    expect(combineHealth([], new Map()).ok).toBe(false);
  });
});
