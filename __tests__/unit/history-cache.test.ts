// core/history-cache.ts over a fake shared history: hits, fills that extend a
// run backwards, one fill shared by concurrent misses, the bounds, horizons,
// dropping a run when contiguity is lost, and — read by the real paged merge
// while events keep being published and delivered late — nothing lost or twice.
import type { HistoryLimits, HistorySnapshot } from '../../src/core/broker';
import type { SseEvent } from '../../src/core/event';
import { HistoryCache, MEMORY_PAGE_BYTES, type HistoryCacheOptions } from '../../src/core/history-cache';
import { compareIds, parseEventId } from '../../src/core/history';
import { isNewer, PagedHistoryRead } from '../../src/core/history-read';
import { FakeHistory } from '../helpers/fake-history';

const limits: HistoryLimits = { size: 1000, ttl: 3600 };
const PAGE = { count: 16 };

/** A fake Redis with a pub/sub that delivers late, and a cache in front of it. */
class World {
  readonly fake = new FakeHistory();
  readonly cache: HistoryCache;
  flowing = true;
  /** Published, not yet delivered live. */
  readonly inFlight: [string, SseEvent][] = [];
  /** Everything delivered live, per listener that asked (a resuming client's queue). */
  readonly queues = new Set<[string, SseEvent][]>();
  private seq = 0;

  constructor(options: Partial<HistoryCacheOptions> = {}) {
    this.cache = new HistoryCache(this.fake, { flowing: () => this.flowing }, { orderedIds: true, ...options });
  }

  /** Issues the next id (ids grow across channels, as on one Redis). */
  publish(channel: string): SseEvent {
    const id = `1000-${this.seq++}`;
    const [event] = this.fake.keep(channel, id) as [SseEvent];
    this.inFlight.push([channel, event]);
    return event;
  }

  /** Delivers up to `n` in-flight events live, in order. */
  deliver(n = Infinity): void {
    for (let i = 0; i < n && this.inFlight.length > 0; i++) {
      const [channel, event] = this.inFlight.shift() as [string, SseEvent];
      this.cache.received(channel, event, parseEventId(event.id));
      for (const queue of this.queues) queue.push([channel, event]);
    }
  }

  async subscribe(...channels: string[]): Promise<void> {
    for (const channel of channels) this.cache.subscribed(channel, Promise.resolve());
    await Promise.resolve();
  }

  read(after: Record<string, string>, page = PAGE): Promise<HistorySnapshot> {
    return this.cache.readHistory(new Map(Object.entries(after)), limits, page);
  }
}

const ids = (snapshot: HistorySnapshot, channel: string): string[] =>
  (snapshot.channels.get(channel)?.events ?? []).map((e) => e.id as string);
const range = (from: number, to: number): string[] =>
  Array.from({ length: to - from + 1 }, (_, i) => `1000-${from + i}`);

let world: World;
afterEach(() => world.cache.close());

test('a miss fills the run once; the next reads of the channel are answered from memory', async () => {
  world = new World();
  for (let i = 0; i < 40; i++) world.publish('all');
  world.deliver();
  await world.subscribe('all');
  const first = await world.read({ all: '1000-9' });
  // Held in memory anyway: the page is not cut at the 16 asked for.
  expect(ids(first, 'all')).toEqual(range(10, 39));
  expect(first.channels.get('all')?.more).toBe(false);
  const fills = world.fake.reads.length;
  expect(fills).toBe(2); // 16 + 14 events: up to the live edge
  // Further pages, and other clients at other places in the run: no broker read.
  expect(ids(await world.read({ all: '1000-25' }), 'all')).toEqual(range(26, 39));
  expect(ids(await world.read({ all: '1000-30' }), 'all')).toEqual(range(31, 39));
  expect(world.fake.reads.length).toBe(fills);
  // Live events extend the run.
  world.publish('all');
  world.deliver();
  const tail = await world.read({ all: '1000-39' });
  expect(ids(tail, 'all')).toEqual(['1000-40']);
  expect(tail.channels.get('all')?.more).toBe(false);
  expect(world.fake.reads.length).toBe(fills);
  expect(world.cache.stats).toMatchObject({ hits: 4, misses: 0, fillReads: fills, events: 31 });
});

test('a read from before the run extends it backwards with one fill, up to where it began', async () => {
  world = new World();
  for (let i = 0; i < 40; i++) world.publish('all');
  world.deliver();
  await world.subscribe('all');
  await world.read({ all: '1000-29' });
  const before = world.fake.reads.length;
  const older = await world.read({ all: '1000-4' });
  expect(ids(older, 'all')).toEqual(range(5, 39));
  // 5..29 is two pages of 16; the second reaches where the run began.
  expect(world.fake.reads.length - before).toBe(2);
  expect(world.fake.reads.slice(before).map((r) => r.get('all'))).toEqual(['1000-4', '1000-20']);
  expect(ids(await world.read({ all: '1000-20' }, { count: 100 }), 'all')).toEqual(range(21, 39));
  expect(world.fake.reads.length - before).toBe(2);
});

test('a page from memory holds the count asked for at least, and stops at MEMORY_PAGE_BYTES', async () => {
  world = new World();
  await world.subscribe('all');
  world.cache.received('all', { event: 'message', data: 'x', id: '1000-0' }, [1000, 0]);
  await world.read({ all: '1000-0' }); // starts the run at the live edge
  const big = 'x'.repeat(10_000);
  for (let i = 1; i <= 30; i++)
    world.cache.received('all', { event: 'message', data: big, id: `1000-${i}` }, [1000, i]);
  // Each event counts its strings and its frame, about 20 KB: the page ends with the one that reaches the bound.
  const perEvent = 2 * (big.length + 'message'.length + '1000-1'.length) + 96;
  const page = await world.read({ all: '1000-0' }, { count: 2 });
  expect(ids(page, 'all')).toEqual(range(1, Math.ceil(MEMORY_PAGE_BYTES / perEvent)));
  expect(page.channels.get('all')?.more).toBe(true);
  const many = await world.read({ all: '1000-0' }, { count: 10 });
  expect(ids(many, 'all')).toEqual(range(1, 10));
});

test('concurrent misses on one channel share one fill', async () => {
  world = new World();
  for (let i = 0; i < 100; i++) world.publish('all');
  world.deliver();
  await world.subscribe('all');
  let open: () => void = () => undefined;
  world.fake.gate = new Promise((resolve) => (open = resolve));
  const reads = Array.from({ length: 50 }, (_, i) => world.read({ all: `1000-${10 + (i % 5)}` }));
  open();
  world.fake.gate = undefined;
  const answers = await Promise.all(reads);
  answers.forEach((answer, i) => expect(ids(answer, 'all')[0]).toBe(`1000-${11 + (i % 5)}`));
  // From 10 to the live edge (99): 90 events, 6 pages — not 50 clients × a page.
  expect(world.fake.reads.length).toBe(6);
  expect(world.cache.stats.hits).toBe(50);
});

test('a run keeps at most the history size and the byte bound; a read from past it goes to the broker', async () => {
  world = new World();
  const small: HistoryLimits = { size: 10, ttl: 3600 };
  for (let i = 0; i < 5; i++) world.publish('all');
  world.deliver();
  await world.subscribe('all');
  await world.cache.readHistory(new Map([['all', '1000-4']]), small, PAGE);
  for (let i = 0; i < 30; i++) world.publish('all');
  world.deliver();
  expect(world.cache.stats.events).toBe(10);
  // 25..34 kept: a read from 25 on is a hit, one from before it is not.
  const reads = world.fake.reads.length;
  const hit = await world.cache.readHistory(new Map([['all', '1000-24']]), small, PAGE);
  expect(ids(hit, 'all')).toEqual(range(25, 34));
  expect(world.fake.reads.length).toBe(reads);
  const old = await world.cache.readHistory(new Map([['all', '1000-10']]), small, PAGE);
  expect(ids(old, 'all')).toEqual(range(11, 26)); // from the broker, which still keeps them
  expect(world.cache.stats.events).toBeLessThanOrEqual(10);
  expect(world.cache.stats.misses).toBe(1);

  world.cache.close();
  world = new World({ maxChannelBytes: 1000 });
  await world.subscribe('all');
  world.publish('all');
  world.deliver();
  await world.read({ all: '1000-0' });
  for (let i = 0; i < 50; i++) world.publish('all');
  world.deliver();
  expect(world.cache.stats.bytes).toBeLessThanOrEqual(1000);
  expect(world.cache.stats.events).toBeGreaterThan(0);
});

test('a read from further back than the run can hold fills once; later ones go straight to the broker', async () => {
  world = new World();
  const small: HistoryLimits = { size: 10, ttl: 3600 };
  for (let i = 0; i < 100; i++) world.publish('all');
  world.deliver();
  await world.subscribe('all');
  // Starting from far back keeps only the newest 10, read to the live edge once.
  await world.cache.readHistory(new Map([['all', '1000-5']]), small, PAGE);
  expect(world.cache.stats.events).toBe(10);
  const reads = world.fake.reads.length;
  const first = await world.cache.readHistory(new Map([['all', '1000-5']]), small, PAGE);
  expect(ids(first, 'all')).toEqual(range(6, 21));
  const again = world.fake.reads.length - reads;
  // The second identical read costs the broker one page, not another fill.
  await world.cache.readHistory(new Map([['all', '1000-5']]), small, PAGE);
  expect(world.fake.reads.length - reads - again).toBe(1);
  expect(again).toBeLessThanOrEqual(3);
});

test('a fill that cannot catch up with a channel published to faster than it reads gives up; the read goes to the broker', async () => {
  world = new World();
  const small: HistoryLimits = { size: 50, ttl: 3600 };
  for (let i = 0; i < 20; i++) world.publish('all');
  world.deliver();
  await world.subscribe('all');
  // Every read the fill makes finds a page and more published behind it: the live edge runs away.
  world.fake.afterRead = () => {
    for (let i = 0; i < 20; i++) world.publish('all');
  };
  const answer = await world.cache.readHistory(new Map([['all', '1000-0']]), small, PAGE);
  world.fake.afterRead = undefined;
  // Answered all the same, from the broker, as without a cache.
  expect(ids(answer, 'all')).toEqual(range(1, 16));
  expect(world.cache.stats.misses).toBe(1);
  // Each of the two attempts stopped after a history's worth of new events
  // (50 + a page): 6 reads, then 13 from further behind (without the bound
  // this read never returns).
  expect(world.cache.stats.fillReads).toBeLessThanOrEqual(20);
});

test('horizons: a hit never reports a gap; a trimmed history is answered by the broker, gap and all', async () => {
  world = new World();
  for (let i = 0; i < 20; i++) world.publish('all');
  world.deliver();
  world.fake.trim('all', 5); // 0..4 dropped: the horizon is 1000-4
  await world.subscribe('all');
  const hit = await world.read({ all: '1000-8' });
  expect(compareIds('1000-8', hit.channels.get('all')?.horizon as string)).toBeGreaterThanOrEqual(0);
  const trimmed = await world.read({ all: '1000-1' });
  expect(trimmed.channels.get('all')?.horizon).toBe('1000-4');
  expect(trimmed.channels.get('all')?.oldestId).toBe('1000-5');
  expect(ids(trimmed, 'all')[0]).toBe('1000-5');
  expect(world.cache.stats.misses).toBe(1);
  // Filled back to the horizon, not past it: reads from there on are hits.
  const atHorizon = await world.read({ all: '1000-4' });
  expect(ids(atHorizon, 'all')[0]).toBe('1000-5');
  expect(world.cache.stats.misses).toBe(1);
});

test('a broker outage or an unsubscribe drops the run; reads go to the broker until a new one starts', async () => {
  world = new World();
  for (let i = 0; i < 20; i++) world.publish('all');
  world.deliver();
  await world.subscribe('all');
  await world.read({ all: '1000-0' });
  expect(world.cache.stats.events).toBe(19);

  world.flowing = false;
  world.cache.brokerDown();
  expect(world.cache.stats.events).toBe(0);
  // Events published meanwhile never arrive live; the cache must not pretend to have them.
  world.publish('all');
  world.inFlight.length = 0;
  const during = world.fake.reads.length;
  expect(ids(await world.read({ all: '1000-18' }), 'all')).toEqual(['1000-19', '1000-20']);
  expect(world.fake.reads.length - during).toBe(1);
  expect(world.cache.stats.misses).toBe(1);

  // Back: a new run starts from the broker, then follows live events again.
  world.flowing = true;
  world.publish('all');
  world.deliver();
  expect(ids(await world.read({ all: '1000-18' }), 'all')).toEqual(['1000-19', '1000-20', '1000-21']);
  expect(world.cache.stats).toMatchObject({ events: 3, misses: 1 });

  world.cache.unsubscribed('all');
  expect(world.cache.stats.events).toBe(0);
  const after = world.fake.reads.length;
  await world.read({ all: '1000-18' });
  expect(world.fake.reads.length - after).toBe(1);
  expect(world.cache.stats.misses).toBe(2);
});

test('ordered ids: an answer from memory waits until live delivery has passed where the run started', async () => {
  world = new World();
  for (let i = 0; i < 10; i++) world.publish('all');
  world.deliver(5); // 5..9 still on their way
  await world.subscribe('all');
  let answered = false;
  const read = world.read({ all: '1000-0' }).then((snapshot) => {
    answered = true;
    return snapshot;
  });
  await new Promise((resolve) => setImmediate(resolve));
  expect(answered).toBe(false);
  world.deliver();
  expect(ids(await read, 'all')).toEqual(range(1, 9));
  expect(world.cache.stats).toMatchObject({ hits: 1, misses: 0 });
});

test('ordered ids: when live delivery does not get there in time, the read goes to the broker', async () => {
  world = new World({ liveWaitMs: 10 });
  for (let i = 0; i < 10; i++) world.publish('all');
  world.deliver(5);
  await world.subscribe('all');
  expect(ids(await world.read({ all: '1000-0' }), 'all')).toEqual(range(1, 9));
  expect(world.cache.stats).toMatchObject({ hits: 0, misses: 1 });
});

test('ordered ids: after a read went to the broker, answers from memory wait until live delivery has passed it', async () => {
  world = new World();
  for (let i = 0; i < 10; i++) world.publish('all');
  world.deliver();
  await world.subscribe('all');
  await world.read({ all: '1000-0' });
  // 10..14 published, not yet delivered; a channel without a live run is read from Redis as of 14.
  for (let i = 0; i < 5; i++) world.publish('all');
  world.publish('elsewhere');
  await world.read({ elsewhere: '1000-0' });
  expect(world.cache.stats.misses).toBe(1);
  let answered = false;
  const read = world.read({ all: '1000-0' }).then((snapshot) => {
    answered = true;
    return snapshot;
  });
  await new Promise((resolve) => setImmediate(resolve));
  expect(answered).toBe(false); // an answer as of 9 would come after one as of 15: back in time
  world.deliver(2);
  await new Promise((resolve) => setImmediate(resolve));
  expect(answered).toBe(false);
  world.deliver(); // up to 15
  expect(ids(await read, 'all')).toEqual(range(1, 14));
  expect(world.cache.stats).toMatchObject({ hits: 2, misses: 1 });
});

test('ids per channel (Redis Cluster): each channel is answered up to its own last event, without waiting', async () => {
  world = new World({ orderedIds: false });
  for (let i = 0; i < 10; i++) world.publish('all');
  world.deliver(5);
  await world.subscribe('all');
  expect(ids(await world.read({ all: '1000-0' }), 'all')).toEqual(range(1, 9));
  expect(world.cache.stats).toMatchObject({ hits: 1, misses: 0 });
});

/** Deterministic choices for the interleavings below. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

/**
 * A resume as core/replay.ts does it: queue live events, read history through
 * the paged merge; `finish` then adds the queued events newer than the newest
 * written (in the hub: queued, then as a listener past its floor).
 */
async function resume(
  world: World,
  channels: string[],
  lastId: string,
): Promise<{ written: SseEvent[]; finish: () => SseEvent[] }> {
  const queue: [string, SseEvent][] = [];
  world.queues.add(queue);
  const read = new PagedHistoryRead(() => new Map(channels.map((c) => [c, lastId])), {
    history: world.cache,
    limits,
    keepTrying: () => true,
    onError: () => undefined,
  });
  await read.start();
  const written: SseEvent[] = [];
  let newest = parseEventId(lastId);
  for (let item = await read.next(); item !== null; item = await read.next()) {
    if (item === undefined) throw new Error('the read gave up');
    written.push(item.event);
    newest = item.id;
  }
  const finish = (): SseEvent[] => {
    world.queues.delete(queue);
    for (const [channel, event] of queue) {
      const id = parseEventId(event.id);
      if (channels.includes(channel) && isNewer(id, newest)) {
        written.push(event);
        newest = id;
      }
    }
    return written;
  };
  return { written, finish };
}

// A short wait makes some reads go to the broker between answers from memory.
test.each([
  [1, 50],
  [2, 50],
  [3, 50],
  [4, 1],
  [5, 1],
  [6, 1],
  [7, 1],
  [8, 1],
])(
  'resumes through the cache while events keep coming, delivered late: each event once (seed %i, wait %i ms)',
  async (seed, liveWaitMs) => {
    world = new World({ liveWaitMs });
    const rand = random(seed);
    const users = ['u1', 'u2', 'u3', 'u4'];
    // Publishing stops after a fixed number of events: a reader can only
    // finish once it catches up, and on a loaded machine an endless 1 ms
    // publisher outruns any reader (the test then never ended).
    let budget = 450 + 600;
    const publishSome = (): void => {
      const n = Math.min(budget, Math.floor(rand() * 4));
      budget -= n;
      for (let i = 0; i < n; i++) world.publish(rand() < 0.5 ? 'all' : (users[Math.floor(rand() * 4)] as string));
    };
    for (let i = 0; i < 300; i++) publishSome();
    world.deliver();
    await world.subscribe('all', ...users);
    // Redis moves on between the reads, and live delivery lags behind it.
    world.fake.afterRead = () => {
      publishSome();
      world.deliver(Math.floor(rand() * 3));
    };
    // Live delivery stalls now and then, for longer than a read waits for it.
    let tick = 0;
    const pump = setInterval(() => {
      publishSome();
      if (tick++ % 20 < 15) world.deliver(Math.floor(rand() * 6));
    }, 1);
    try {
      const clients = users.flatMap((user, i) => [
        { channels: ['all', user], lastId: `1000-${50 + i * 40}` },
        { channels: ['all', user], lastId: `1000-${200 + i * 20}` },
      ]);
      const resumes = await Promise.all(clients.map((c) => resume(world, c.channels, c.lastId)));
      clearInterval(pump);
      world.fake.afterRead = undefined;
      world.deliver();
      clients.forEach((client, i) => {
        const got = (resumes[i] as { finish: () => SseEvent[] }).finish().map((e) => e.id as string);
        const expected = client.channels
          .flatMap((channel) => world.fake.kept.get(channel) ?? [])
          .filter((e) => compareIds(e.id as string, client.lastId) > 0)
          .map((e) => e.id as string)
          .sort(compareIds);
        expect(got).toEqual(expected);
      });
      if (liveWaitMs > 1) expect(world.cache.stats.hits).toBeGreaterThan(0);
    } finally {
      clearInterval(pump);
      world.fake.afterRead = undefined;
    }
  },
);
