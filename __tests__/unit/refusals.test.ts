// core/refusals.ts: the dashboard's refusal log stays bounded however many
// refusals arrive, keeps the newest first, and counts every one by kind.
import { RefusalLog, REFUSALS_KEPT } from '../../src/core/refusals';

test('keeps the newest records, newest first, and counts all of them', () => {
  const log = new RefusalLog();
  for (let i = 0; i < 10_000; i++) log.record(i % 2 === 0 ? 'forbidden' : 'cap', `refusal ${i}`, i);
  const recent = log.recent();
  expect(recent).toHaveLength(REFUSALS_KEPT);
  expect(recent[0]).toEqual({ time: 9999, kind: 'cap', detail: 'refusal 9999' });
  expect(recent[REFUSALS_KEPT - 1]?.detail).toBe(`refusal ${10_000 - REFUSALS_KEPT}`);
  expect(log.totals()).toEqual({ forbidden: 5000, cap: 5000 });
});

test('long details are cut, and kinds past the bound count as other', () => {
  const log = new RefusalLog(4);
  log.record('forbidden', 'x'.repeat(10_000));
  expect(log.recent()[0]?.detail.length).toBeLessThanOrEqual(300);
  for (let i = 0; i < 100; i++) log.record(`kind-${i}`, 'y');
  expect(Object.keys(log.totals()).length).toBeLessThanOrEqual(33);
  expect(log.totals().other).toBeGreaterThan(0);
  expect(log.recent()).toHaveLength(4);
});

test('an empty log has no records', () => {
  expect(new RefusalLog().recent()).toEqual([]);
});
