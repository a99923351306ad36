// Reconnection delays for refused streams. A refusal (a connection cap, the
// session store away) reaches a crowd at once; were they all told the same
// `retry:`, they would all come back in the same instant and be refused again.
// Spreading each delay over [base, 2·base) breaks such a thundering herd.

/**
 * A reconnection delay in [baseMs, 2·baseMs), whole milliseconds.
 * `random` returns [0, 1) (Math.random by default; tests pass their own).
 */
export function jitteredRetryMs(baseMs: number, random: () => number = Math.random): number {
  const r = random();
  const fraction = r >= 0 && r < 1 ? r : 0;
  return Math.min(Math.floor(baseMs + baseMs * fraction), 2 * baseMs - 1);
}
