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
