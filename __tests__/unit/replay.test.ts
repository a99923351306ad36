// core/replay.ts with a fake history capability, a fake hub port and fake
// responses: the gap event, replay in id order across channels, live events
// queued during the read written once and after it, the per-connection floor,
// read retries, pacing at the client's pace, and the bounds that end a replay.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Connection } from '../../src/core/connection';
import { parseEventId, type EventIdParts } from '../../src/core/history';
import { PAGE_EVENTS } from '../../src/core/history-read';
import { MAX_QUEUED_EVENTS, Replays, type ReplayPort } from '../../src/core/replay';
import { silentLogger } from '../../src/core/logger';
import { FakeHistory } from '../helpers/fake-history';
import { FakeResponse } from '../helpers/fake-response';
import { waitFor } from '../helpers/wait-for';

const req = { httpVersionMajor: 1, httpVersionMinor: 1, socket: { destroyed: false } } as unknown as IncomingMessage;
const LIMITS = { size: 1000, ttl: 3600 };

class FakePort implements ReplayPort {
  readonly subscribed: string[] = [];
  readonly listening: [Connection, string][] = [];
  readonly released: string[] = [];
  lastReceived: EventIdParts | undefined;
  catchingUp: Promise<void> | undefined;
  subscribe(channel: string): Promise<void> {
    this.subscribed.push(channel);
    return Promise.resolve();
  }
  listen(connection: Connection, channel: string): void {
    this.listening.push([connection, channel]);
  }
  release(channel: string): void {
    this.released.push(channel);
  }
  lastReceivedId(): EventIdParts | undefined {
    return this.lastReceived;
  }
  whenCaughtUp(): Promise<void> | undefined {
    return this.catchingUp;
  }
  closed(): boolean {
    return false;
  }
}

function setup(maxBufferedBytes = 1 << 20) {
  const history = new FakeHistory();
  const port = new FakePort();
  const replays = new Replays(port, { history, limits: LIMITS, logger: silentLogger, stallTimeout: 30_000 });
  const open = (channels: string[]) => {
    const res = new FakeResponse();
    const connection = new Connection(
      req,
      res as unknown as ServerResponse,
      channels,
      { retry: 3000, maxBufferedBytes },
      { tick: 0 },
      (c) => replays.forget(c),
    );
    return { res, connection };
  };
  return { history, port, replays, open };
}

/** The `id:`s written to a response, in order, and `gap` events as `gap:<channel>`. */
function written(res: FakeResponse): string[] {
  const out: string[] = [];
  for (const block of res.text().split('\n\n')) {
    const id = /^id: (.*)$/m.exec(block);
    if (id) out.push(id[1] as string);
    else if (block.startsWith('event: gap')) out.push(`gap:${JSON.parse(/^data: (.*)$/m.exec(block)![1]!).channel}`);
    else {
      const data = /^data: (.*)$/m.exec(block);
      if (data) out.push(`live:${data[1]}`);
    }
  }
  return out;
}

test('replays what each channel missed in id order, with a gap event where history no longer reaches back, then listens', async () => {
  const { history, port, replays, open } = setup();
  history.keep('a', '5-1', '5-3');
  history.keep('b', '5-2');
  history.horizons.set('b', '5-0'); // b dropped events after the client's id
  const { res, connection } = open(['a', 'b']);
  await replays.resume(connection, '4-9');
  expect(written(res)).toEqual(['gap:b', '5-1', '5-2', '5-3']);
  expect(history.reads).toEqual([
    new Map([
      ['a', '4-9'],
      ['b', '4-9'],
    ]),
  ]);
  expect(port.subscribed).toEqual(['a', 'b']);
  expect(port.listening).toEqual([
    [connection, 'a'],
    [connection, 'b'],
  ]);
  expect(replays.eventsReplayed).toBe(3);
  expect(replays.gapsSent).toBe(1);
  expect(replays.isResuming('a')).toBe(false);
});

test('a Last-Event-ID that is no sse-hub id: a gap on every channel and no replay', async () => {
  const { history, replays, open } = setup();
  history.keep('a', '5-1');
  const { res, connection } = open(['a']);
  await replays.resume(connection, 'not-an-id');
  expect(written(res)).toEqual(['gap:a']);
  expect(history.reads[0]?.get('a')).toBe(`${Number.MAX_SAFE_INTEGER}-0`);
});

test('live events that arrive during the read are written after the replay, once each', async () => {
  const { history, replays, open } = setup();
  history.keep('a', '5-1', '5-2');
  let openGate!: () => void;
  history.gate = new Promise((resolve) => (openGate = resolve));
  const { res, connection } = open(['a']);
  const resuming = replays.resume(connection, '5-0');
  await waitFor(() => history.reads.length === 1);
  expect(replays.isResuming('a')).toBe(true);
  // 5-2 is in the read and arrives live too; 5-3 only live; one event without an id.
  for (const id of ['5-2', '5-3']) replays.queue('a', { event: 'message', data: id, id }, parseEventId(id));
  replays.queue('a', { event: 'message', data: 'bare' }, undefined);
  replays.queue('other', { event: 'message', data: 'x', id: '5-4' }, parseEventId('5-4'));
  openGate();
  await resuming;
  expect(written(res)).toEqual(['5-1', '5-2', '5-3', 'live:bare']);
});

test('the floor: a resumed connection drops live copies up to the newest id it was written, no further', async () => {
  const { history, port, replays, open } = setup();
  history.keep('a', '5-1', '5-2');
  port.lastReceived = parseEventId('5-1'); // the live stream has not reached 5-2 yet
  const { connection } = open(['a']);
  await replays.resume(connection, '5-0');
  replays.floors.pass(parseEventId('5-2') as EventIdParts);
  expect(replays.floors.drops(connection)).toBe(true);
  replays.floors.pass(parseEventId('5-3') as EventIdParts);
  expect(replays.floors.drops(connection)).toBe(false);
  // Once passed, the floor is gone for good.
  replays.floors.pass(parseEventId('5-2') as EventIdParts);
  expect(replays.floors.drops(connection)).toBe(false);
});

test('no floor when the live stream is already past the replay', async () => {
  const { history, port, replays, open } = setup();
  history.keep('a', '5-1');
  port.lastReceived = parseEventId('5-7');
  const { connection } = open(['a']);
  await replays.resume(connection, '5-0');
  expect(replays.floors.size).toBe(0);
});

test('a failing read (broker down) is retried with backoff until it succeeds', async () => {
  const { history, replays, open } = setup();
  history.keep('a', '5-1');
  history.failures = 2;
  const { res, connection } = open(['a']);
  const started = Date.now();
  await replays.resume(connection, '5-0');
  expect(history.reads).toHaveLength(3);
  expect(Date.now() - started).toBeGreaterThanOrEqual(100 + 200 - 5); // 100 ms, then 200 ms
  expect(written(res)).toEqual(['5-1']);
});

test('a replay waits for a catch-up in progress before writing', async () => {
  const { history, port, replays, open } = setup();
  history.keep('a', '5-1');
  let caughtUp!: () => void;
  port.catchingUp = new Promise((resolve) => (caughtUp = resolve));
  const { res, connection } = open(['a']);
  const resuming = replays.resume(connection, '5-0');
  await waitFor(() => history.reads.length === 1);
  await new Promise((resolve) => setImmediate(resolve));
  expect(written(res)).toEqual([]);
  port.catchingUp = undefined;
  caughtUp();
  await resuming;
  expect(written(res)).toEqual(['5-1']);
});

test('pacing: while more than half of maxBufferedBytes is unsent the replay waits; a drain lets it go on', async () => {
  const { history, replays, open } = setup(1000);
  history.keep('a', '5-1', '5-2', '5-3');
  const { res, connection } = open(['a']);
  res.writableLength = 501;
  const resuming = replays.resume(connection, '5-0');
  await waitFor(() => history.reads.length === 1);
  await new Promise((resolve) => setImmediate(resolve));
  expect(written(res)).toEqual([]);
  res.writableLength = 0;
  res.emit('drain');
  await resuming;
  expect(written(res)).toEqual(['5-1', '5-2', '5-3']);
  expect(connection.open).toBe(true);
});

test('too many live events queued behind a paced replay end it; the client reconnects from where it got to', async () => {
  const { history, port, replays, open } = setup(1000);
  history.keep('a', '5-1');
  const { res, connection } = open(['a']);
  res.writableLength = 600;
  const resuming = replays.resume(connection, '5-0');
  await waitFor(() => history.reads.length === 1);
  for (let i = 0; i <= MAX_QUEUED_EVENTS; i++) replays.queue('a', { event: 'm', data: 'x', id: `6-${i}` }, [6, i]);
  await resuming; // the next wake-up (at most 100 ms) sees the queue
  expect(connection.closeReason).toBe('server');
  expect(res.ended).toBe(true);
  expect(port.listening).toEqual([]);
  expect(port.released).toEqual(['a']);
});

test('a client that leaves mid-replay releases its channels and never listens', async () => {
  const { history, port, replays, open } = setup(1000);
  history.keep('a', '5-1', '5-2');
  const { res, connection } = open(['a', 'b']);
  res.writableLength = 600;
  const resuming = replays.resume(connection, '5-0');
  await waitFor(() => history.reads.length === 1);
  res.emit('close');
  await resuming;
  expect(port.listening).toEqual([]);
  expect(port.released).toEqual(['a', 'b']);
  expect(replays.isResuming('a')).toBe(false);
});

describe('bounded replays', () => {
  test('a history larger than a page is replayed whole, in id order across channels; no read returns more than a page', async () => {
    const { history, replays, open } = setup();
    const channels = ['a', 'b', 'c'];
    const all: string[] = [];
    for (let i = 0; i < 400; i++) {
      const id = `6-${i}`;
      history.keep(channels[(i * 7) % 3 === 0 ? 0 : i % 3] as string, id);
      all.push(id);
    }
    const { res, connection } = open(channels);
    await replays.resume(connection, '5-0');
    expect(written(res)).toEqual(all);
    expect(history.reads.length).toBeGreaterThan(400 / PAGE_EVENTS);
    expect(Math.max(...history.returned)).toBeLessThanOrEqual(PAGE_EVENTS);
  });

  test('history in one of many channels is still read in full pages, not a share of one', async () => {
    const { history, replays, open } = setup();
    const ids = Array.from({ length: 100 }, (_, i) => `6-${i}`);
    history.keep('a', ...ids);
    const channels = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
    const { res, connection } = open(channels);
    await replays.resume(connection, '5-0');
    expect(written(res)).toEqual(ids);
    // The first read gives each of the 8 channels 2 events; then 'a' alone gets whole pages.
    expect(history.reads.length).toBeLessThanOrEqual(2 + Math.ceil(98 / PAGE_EVENTS));
    expect(Math.max(...history.returned)).toBeLessThanOrEqual(PAGE_EVENTS);
  });

  test('events trimmed between two pages: a gap event for that channel where they were lost, then what is kept', async () => {
    const { history, replays, open } = setup();
    history.keep('a', ...Array.from({ length: 100 }, (_, i) => `6-${i}`));
    // Right after the first page (6-0 … 6-63), the channel drops its 80 oldest.
    history.afterRead = (read) => {
      if (read === 1) history.trim('a', 80);
    };
    const { res, connection } = open(['a']);
    await replays.resume(connection, '5-0');
    const expected = [
      ...Array.from({ length: PAGE_EVENTS }, (_, i) => `6-${i}`),
      'gap:a',
      ...Array.from({ length: 20 }, (_, i) => `6-${80 + i}`),
    ];
    expect(written(res)).toEqual(expected);
    expect(res.text()).toContain(`data: {"lastEventId":"6-${PAGE_EVENTS - 1}","oldestId":"6-80","channel":"a"}`);
    expect(replays.gapsSent).toBe(1);
  });

  test('a client that takes no byte for stallTimeout ms is closed as slow and counted', async () => {
    const history = new FakeHistory();
    const port = new FakePort();
    const replays = new Replays(port, { history, limits: LIMITS, logger: silentLogger, stallTimeout: 300 });
    history.keep('a', '6-1', '6-2');
    const res = new FakeResponse();
    const connection = new Connection(
      req,
      res as unknown as ServerResponse,
      ['a'],
      { retry: 3000, maxBufferedBytes: 1000 },
      { tick: 0 },
      () => undefined,
    );
    res.writableLength = 600; // congested, and it never goes down
    const started = Date.now();
    await replays.resume(connection, '6-0');
    expect(Date.now() - started).toBeGreaterThanOrEqual(295);
    expect(connection.closeReason).toBe('slow');
    expect(res.destroyed).toBe(true);
    expect(replays.replaysStalled).toBe(1);
    expect(replays.active).toBe(0);
    expect(port.released).toEqual(['a']);
  });

  test('a client that keeps taking bytes, however slowly, is not a stall', async () => {
    const history = new FakeHistory();
    const port = new FakePort();
    const replays = new Replays(port, { history, limits: LIMITS, logger: silentLogger, stallTimeout: 300 });
    history.keep('a', '6-1', '6-2');
    const res = new FakeResponse();
    const connection = new Connection(
      req,
      res as unknown as ServerResponse,
      ['a'],
      { retry: 3000, maxBufferedBytes: 1000 },
      { tick: 0 },
      () => undefined,
    );
    res.writableLength = 900;
    // 10 bytes every 50 ms: 800 ms congested in all, never 300 ms without progress.
    const trickle = setInterval(() => {
      res.writableLength -= 25;
      res.emit('drain');
    }, 50);
    try {
      await replays.resume(connection, '6-0');
    } finally {
      clearInterval(trickle);
    }
    expect(connection.open).toBe(true);
    expect(written(res)).toEqual(['6-1', '6-2']);
    expect(replays.replaysStalled).toBe(0);
  });

  test('active counts the replays running now', async () => {
    const { history, replays, open } = setup();
    history.keep('a', '6-1');
    let openGate!: () => void;
    history.gate = new Promise((resolve) => (openGate = resolve));
    const runs = [open(['a']), open(['a'])].map(({ connection }) => replays.resume(connection, '6-0'));
    expect(replays.active).toBe(2);
    openGate();
    await Promise.all(runs);
    expect(replays.active).toBe(0);
  });
});
