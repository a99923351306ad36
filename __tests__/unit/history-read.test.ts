// core/history-read.ts: the backoff of failed reads, the retrying read, and
// the id floor shared by replay and catch-up.
import type { Broker } from '../../src/core/broker';
import {
  IdFloors,
  isNewer,
  PagedHistoryRead,
  PAGE_EVENTS,
  ReadLimiter,
  readBackoffMs,
  readHistoryWithRetry,
} from '../../src/core/history-read';
import { waitFor } from '../helpers/wait-for';
import { MemoryHistory, parseEventId, type EventIdParts } from '../../src/core/history';

const id = (text: string): EventIdParts => parseEventId(text) as EventIdParts;

test('backoff doubles from 100 ms and stays at 2 s', () => {
  expect([0, 1, 2, 3, 4, 5, 10].map(readBackoffMs)).toEqual([100, 200, 400, 800, 1600, 2000, 2000]);
});

test('a read is retried while keepTrying() holds, and gives up (undefined) when it stops', async () => {
  let calls = 0;
  const errors: unknown[] = [];
  let keep = true;
  const read = (): Promise<never> => {
    calls++;
    if (calls === 2) keep = false;
    return Promise.reject(new Error('down'));
  };
  await expect(
    readHistoryWithRetry(
      read,
      () => keep,
      (e) => errors.push(e),
    ),
  ).resolves.toBeUndefined();
  expect(calls).toBe(2);
  expect(errors).toHaveLength(2);
});

test('isNewer: strictly after the newest written; an event without an sse-hub id is always new', () => {
  expect(isNewer(id('5-2'), id('5-1'))).toBe(true);
  expect(isNewer(id('5-1'), id('5-1'))).toBe(false);
  expect(isNewer(id('4-9'), id('5-1'))).toBe(false);
  expect(isNewer(undefined, id('5-1'))).toBe(true);
  expect(isNewer(id('1-0'), undefined)).toBe(true);
});

test('IdFloors: each key drops copies at or below its floor until a newer id passes it', () => {
  const floors = new IdFloors<string>();
  floors.set('x', id('5-3'));
  floors.set('y', id('5-1'));
  floors.pass(id('5-2'));
  expect(floors.drops('x')).toBe(true);
  expect(floors.drops('y')).toBe(false);
  expect(floors.size).toBe(1);
  floors.pass(id('5-3'));
  expect(floors.drops('x')).toBe(true); // at the floor: still a copy
  floors.pass(id('5-4'));
  expect(floors.drops('x')).toBe(false);
  expect(floors.size).toBe(0);
});

test('ReadLimiter: at most `limit` reads run at once; the others wait, in order', async () => {
  const limiter = new ReadLimiter(2);
  let running = 0;
  let peak = 0;
  const started: number[] = [];
  const gates: (() => void)[] = [];
  const reads = Array.from({ length: 5 }, (_, i) =>
    limiter.run(async () => {
      started.push(i);
      peak = Math.max(peak, ++running);
      await new Promise<void>((resolve) => gates.push(resolve));
      running--;
      return i;
    }),
  );
  for (let done = 0; done < 5; done++) {
    await waitFor(() => gates.length > done);
    gates[done]?.();
  }
  expect(await Promise.all(reads)).toEqual([0, 1, 2, 3, 4]);
  expect(peak).toBe(2);
  expect(started).toEqual([0, 1, 2, 3, 4]);
});

test('ReadLimiter: a failed read frees its slot', async () => {
  const limiter = new ReadLimiter(1);
  await expect(limiter.run(() => Promise.reject(new Error('down')))).rejects.toThrow('down');
  await expect(limiter.run(() => Promise.resolve('ok'))).resolves.toBe('ok');
});

test('a paged read over two channels never passes an event published on the finished one after its read', async () => {
  // Regression: the quiet channel's first read said "that is all"; the busy
  // one was refilled later and returned events newer than one published on
  // the quiet channel meanwhile, which the merge then passed for good.
  const history = new MemoryHistory({ publish: () => Promise.resolve() } as unknown as Broker);
  const limits = { size: 1000, ttl: 3600 };
  const event = { event: 'm', data: 'x' };
  const start = await history.publishWithHistory('all', event, limits);
  for (let i = 0; i < PAGE_EVENTS * 2; i++) await history.publishWithHistory('all', event, limits);
  const read = new PagedHistoryRead(
    () =>
      new Map([
        ['all', start],
        ['own', start],
      ]),
    {
      history,
      limits,
      keepTrying: () => true,
      onError: () => undefined,
    },
  );
  await read.start();
  const ids: string[] = [];
  let late: string[] = [];
  for (;;) {
    const item = await read.next();
    if (item === undefined) throw new Error('the read gave up');
    if (item === null) break;
    ids.push(item.event.id as string);
    if (ids.length === 1) {
      // While the first page is written: one event on the quiet channel, then one on the busy one.
      late = [
        await history.publishWithHistory('own', event, limits),
        await history.publishWithHistory('all', event, limits),
      ];
    }
  }
  expect(ids.slice(-2)).toEqual(late);
  expect(ids).toHaveLength(PAGE_EVENTS * 2 + 2);
});

test('ready(): the next event while the pages held decide it, undefined when a read is due, null at the end', async () => {
  const history = new MemoryHistory({ publish: () => Promise.resolve() } as unknown as Broker);
  const limits = { size: 1000, ttl: 3600 };
  const event = { event: 'm', data: 'x' };
  const start = await history.publishWithHistory('all', event, limits);
  for (let i = 0; i < PAGE_EVENTS + 4; i++) await history.publishWithHistory('all', event, limits);
  let reads = 0;
  const read = new PagedHistoryRead(() => new Map([['all', start]]), {
    history: {
      publishWithHistory: (...args) => history.publishWithHistory(...args),
      readHistory: (...args) => {
        reads++;
        return history.readHistory(...args);
      },
    },
    limits,
    keepTrying: () => true,
    onError: () => undefined,
  });
  await read.start();
  // The whole first page is at hand, without a read.
  const taken: string[] = [];
  for (let item = read.ready(); item; item = read.ready()) taken.push(item.event.id as string);
  expect(taken).toHaveLength(PAGE_EVENTS);
  expect(reads).toBe(1);
  expect(read.ready()).toBeUndefined(); // the page is used up and the history has more: next() reads
  const next = await read.next();
  expect(reads).toBe(2);
  taken.push(next?.event.id as string);
  for (let item = read.ready(); item; item = read.ready()) taken.push(item.event.id as string);
  expect(taken).toHaveLength(PAGE_EVENTS + 4);
  expect(new Set(taken).size).toBe(taken.length);
  // "That is all" as of the last read: the end, with no further read.
  expect(read.ready()).toBeNull();
  expect(await read.next()).toBeNull();
  expect(reads).toBe(2);
});
