// core/retry.ts: refused streams come back spread over [base, 2·base), not all at once.
import { jitteredRetryMs } from '../../src/core/retry';

test('jitteredRetryMs stays in [base, 2·base) and follows the random source', () => {
  expect(jitteredRetryMs(1000, () => 0)).toBe(1000);
  expect(jitteredRetryMs(1000, () => 0.5)).toBe(1500);
  expect(jitteredRetryMs(1000, () => 0.999999999)).toBe(1999);
  expect(jitteredRetryMs(3000, () => 0.25)).toBe(3750);
});

test('a broken random source (outside [0, 1)) cannot push the delay out of range', () => {
  for (const r of [1, 2, -1, NaN]) {
    const ms = jitteredRetryMs(1000, () => r);
    expect(ms).toBeGreaterThanOrEqual(1000);
    expect(ms).toBeLessThan(2000);
  }
});

test('with Math.random, a crowd of 1000 gets spread-out delays', () => {
  const delays = Array.from({ length: 1000 }, () => jitteredRetryMs(1000));
  expect(Math.min(...delays)).toBeGreaterThanOrEqual(1000);
  expect(Math.max(...delays)).toBeLessThan(2000);
  expect(new Set(delays).size).toBeGreaterThan(300);
});

test('spreads a crowd evenly over the whole window', () => {
  const values = Array.from({ length: 10_000 }, () => jitteredRetryMs(1000));
  // Ten 100 ms buckets, each with roughly a tenth of the crowd.
  const buckets = new Array<number>(10).fill(0);
  for (const value of values) (buckets[Math.floor((value - 1000) / 100)] as number)++;
  for (const bucket of buckets) expect(bucket).toBeGreaterThan(700);
});
