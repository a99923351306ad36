// Waiting on events and conditions with a deadline — never a bare sleep.
import type { EventEmitter } from 'node:events';

export async function waitFor<T>(
  check: () => T | undefined | false | null | Promise<T | undefined | false | null>,
  options: { timeout?: number; interval?: number; what?: string } = {},
): Promise<T> {
  const { timeout = 5000, interval = 10, what = 'condition' } = options;
  const deadline = Date.now() + timeout;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false && value !== null) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

export function waitForEvent<T = unknown>(emitter: EventEmitter, event: string, timeout = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, onEvent);
      reject(new Error(`timed out after ${timeout} ms waiting for '${event}'`));
    }, timeout);
    function onEvent(value: T): void {
      clearTimeout(timer);
      resolve(value);
    }
    emitter.once(event, onEvent);
  });
}
