import { MemoryBroker } from '../../src/brokers/memory';
import type { SseEvent } from '../../src/core/event';
import {
  compareIds,
  formatId,
  gapEvent,
  historyHorizon,
  IdClock,
  isHistoryId,
  MemoryHistory,
  parseEventId,
} from '../../src/core/history';

describe('event ids', () => {
  test('parse only <ms>-<seq>', () => {
    expect(parseEventId('1700000000000-3')).toEqual([1700000000000, 3]);
    for (const bad of ['', '12', '1-2-3', 'a-1', '-1', '1-', ' 1-2', '99999999999999999999-0', undefined]) {
      expect(parseEventId(bad)).toBeUndefined();
    }
    expect(isHistoryId('5-0')).toBe(true);
    expect(isHistoryId('abc')).toBe(false);
  });

  test('compare numerically, not as text', () => {
    expect(compareIds('9-0', '10-0')).toBeLessThan(0);
    expect(compareIds('10-2', '10-10')).toBeLessThan(0);
    expect(compareIds('10-2', '10-2')).toBe(0);
  });

  test('the clock issues increasing ids, also when time stands still or goes back', () => {
    const clock = new IdClock();
    const ids = [clock.next(100), clock.next(100), clock.next(99), clock.next(101)];
    expect(ids).toEqual(['100-0', '100-1', '100-2', '101-0']);
  });

  test('the horizon is the latest of dropped id, start and ttl cut-off', () => {
    expect(historyHorizon(null, '5-0', 1000, 3600)).toBe('5-0');
    expect(historyHorizon('7-3', '5-0', 1000, 3600)).toBe('7-3');
    expect(historyHorizon('7-3', '5-0', 20_000, 10)).toBe(formatId(10_000, 0));
  });

  test('a gap event names the id asked for, the oldest kept id and the channel', () => {
    expect(gapEvent('all', '1-0', '5-0')).toEqual({
      event: 'gap',
      data: '{"lastEventId":"1-0","oldestId":"5-0","channel":"all"}',
    });
  });
});

describe('MemoryHistory', () => {
  const limits = { size: 3, ttl: 60 };
  let broker: MemoryBroker;
  let history: MemoryHistory;
  const delivered: SseEvent[] = [];

  beforeEach(async () => {
    broker = new MemoryBroker();
    history = new MemoryHistory(broker);
    delivered.length = 0;
    await broker.subscribe('a', (event) => delivered.push(event));
  });
  afterEach(() => broker.close());

  test('issues increasing ids across channels and publishes the event with its id', async () => {
    const ids = [];
    for (let i = 0; i < 5; i++)
      ids.push(await history.publishWithHistory(i % 2 ? 'a' : 'b', { event: 'm', data: `${i}` }, limits));
    const sorted = [...ids].sort(compareIds);
    expect(ids).toEqual(sorted);
    expect(new Set(ids).size).toBe(5);
    await Promise.resolve();
    expect(delivered.map((e) => e.id)).toEqual([ids[1], ids[3]]);
  });

  test('keeps the newest `size` events per channel and reports what it dropped', async () => {
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await history.publishWithHistory('a', { event: 'm', data: `${i}` }, limits));
    const snapshot = await history.readHistory(new Map([['a', ids[0] as string]]), limits);
    const kept = snapshot.channels.get('a');
    expect(kept?.events.map((e) => e.data)).toEqual(['2', '3', '4']);
    expect(kept?.oldestId).toBe(ids[2]);
    // ids[1] was dropped: a client that saw ids[0] has a gap, one that saw ids[1] has none.
    expect(compareIds(ids[0] as string, kept?.horizon as string)).toBeLessThan(0);
    expect(compareIds(ids[1] as string, kept?.horizon as string)).toBe(0);
    expect(snapshot.lastId).toBe(ids[4]);
  });

  test('reads only after the id asked for; an unknown channel keeps nothing', async () => {
    const first = await history.publishWithHistory('a', { event: 'm', data: '1' }, limits);
    await history.publishWithHistory('a', { event: 'm', data: '2' }, limits);
    const snapshot = await history.readHistory(
      new Map([
        ['a', first],
        ['zzz', first],
      ]),
      limits,
    );
    expect(snapshot.channels.get('a')?.events.map((e) => e.data)).toEqual(['2']);
    expect(snapshot.channels.get('zzz')).toMatchObject({ events: [], oldestId: null });
  });

  test('forgets events older than ttl, and the channel with them', async () => {
    const base = Date.now() + 1000;
    const now = jest.spyOn(Date, 'now');
    try {
      now.mockReturnValue(base);
      const id = await history.publishWithHistory('a', { event: 'm', data: '1' }, { size: 3, ttl: 1 });
      now.mockReturnValue(base + 2000);
      const kept = (await history.readHistory(new Map([['a', '0-0']]), { size: 3, ttl: 1 })).channels.get('a');
      expect(kept?.events).toEqual([]);
      expect(compareIds(id, kept?.horizon as string)).toBeLessThan(0);
      expect(history.channelCount()).toBe(0);
    } finally {
      now.mockRestore();
    }
  });
});

describe('MemoryHistory pages', () => {
  test('a page holds at most `count` events per channel, flags `more`, and the next page starts after it', async () => {
    const broker = new MemoryBroker();
    const history = new MemoryHistory(broker);
    const limits = { size: 100, ttl: 60 };
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) ids.push(await history.publishWithHistory('a', { event: 'm', data: `${i}` }, limits));
    const pages: string[][] = [];
    let after = ids[0] as string;
    for (let more = true; more;) {
      const kept = (await history.readHistory(new Map([['a', after]]), limits, { count: 10 })).channels.get('a');
      const page = (kept?.events ?? []).map((e) => e.data);
      pages.push(page);
      more = kept?.more === true;
      after = kept?.events[kept.events.length - 1]?.id ?? after;
    }
    expect(pages.map((p) => p.length)).toEqual([10, 10, 4]);
    expect(pages.flat()).toEqual(Array.from({ length: 24 }, (_, i) => String(i + 1)));
    // Without a page, the whole history, as before.
    const whole = (await history.readHistory(new Map([['a', ids[0] as string]]), limits)).channels.get('a');
    expect(whole?.events).toHaveLength(24);
    expect(whole?.more).toBe(false);
    await broker.close();
  });
});
