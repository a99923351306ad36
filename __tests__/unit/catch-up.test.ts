// core/catch-up.ts with a fake history capability and a fake hub port: broker
// events queue during an outage; once the broker is back every listened
// channel's missed events are delivered in id order, then the queue without
// what the read already had; live copies of caught-up events are dropped.
import { CatchUp, type CatchUpPort } from '../../src/core/catch-up';
import type { SseEvent } from '../../src/core/event';
import { compareIdParts, parseEventId, type EventIdParts } from '../../src/core/history';
import { PAGE_EVENTS } from '../../src/core/history-read';
import { silentLogger } from '../../src/core/logger';
import { FakeHistory } from '../helpers/fake-history';
import { waitFor } from '../helpers/wait-for';

const LIMITS = { size: 1000, ttl: 3600 };

class FakePort implements CatchUpPort {
  channels = ['a', 'b'];
  lastReceived: string | undefined;
  healthy = true;
  isClosed = false;
  readonly delivered: string[] = [];
  listenedChannels(): Iterable<string> {
    return this.channels;
  }
  lastReceivedId(): string | undefined {
    return this.lastReceived;
  }
  deliver(channel: string, event: SseEvent, id: EventIdParts | undefined): void {
    expect(id).toEqual(parseEventId(event.id)); // the parsed id travels with the event
    this.delivered.push(`${channel}:${event.id ?? event.data}`);
    if (id !== undefined) this.lastReceived = event.id;
  }
  brokerHealthy(): boolean {
    return this.healthy;
  }
  closed(): boolean {
    return this.isClosed;
  }
}

function setup() {
  const history = new FakeHistory();
  const port = new FakePort();
  const catchUp = new CatchUp(port, history, LIMITS, silentLogger);
  /** A live broker event, as the hub hands it over; true when catch-up took it. */
  const live = (channel: string, id: string | undefined, data = 'x'): boolean => {
    const event: SseEvent = id === undefined ? { event: 'm', data } : { event: 'm', data, id };
    const taken = catchUp.intercept(channel, event, parseEventId(id));
    if (!taken) port.deliver(channel, event, parseEventId(id));
    return taken;
  };
  return { history, port, catchUp, live };
}

test('without an outage, events pass straight through', () => {
  const { catchUp, live, port } = setup();
  expect(catchUp.queueing).toBe(false);
  expect(live('a', '5-1')).toBe(false);
  expect(port.delivered).toEqual(['a:5-1']);
});

test('after an outage: missed events of every channel in id order, then the queued ones newer than them', async () => {
  const { history, port, catchUp, live } = setup();
  live('a', '5-1');
  catchUp.brokerDown();
  history.keep('a', '5-1', '5-2', '5-4');
  history.keep('b', '5-3', '5-5');
  // Queued while down (or while catching up): 5-5 is also in the read, 5-6 is not; one without an id.
  expect(live('b', '5-5')).toBe(true);
  expect(live('a', '5-6')).toBe(true);
  expect(live('a', undefined, 'bare')).toBe(true);
  catchUp.brokerUp();
  await waitFor(() => !catchUp.queueing);
  expect(history.reads).toEqual([
    new Map([
      ['a', '5-1'],
      ['b', '5-1'],
    ]),
  ]);
  expect(port.delivered).toEqual(['a:5-1', 'a:5-2', 'b:5-3', 'a:5-4', 'b:5-5', 'a:5-6', 'a:bare']);
  expect(catchUp.eventsCaughtUp).toBe(4);
});

test('live copies of caught-up events are dropped until a newer event passes the floor', async () => {
  const { history, port, catchUp, live } = setup();
  live('a', '5-1');
  catchUp.brokerDown();
  history.keep('a', '5-2', '5-3');
  catchUp.brokerUp();
  await waitFor(() => !catchUp.queueing);
  // The PUBLISH of 5-2 and 5-3 raced the read and arrives live afterwards.
  expect(live('a', '5-2')).toBe(true);
  expect(live('a', '5-3')).toBe(true);
  expect(live('a', undefined, 'bare')).toBe(false); // live-only: never a copy
  expect(live('a', '5-4')).toBe(false);
  expect(port.delivered).toEqual(['a:5-1', 'a:5-2', 'a:5-3', 'a:bare', 'a:5-4']);
});

test('a channel subscribed during normal running catches up from the last id issued when it went live', async () => {
  const { history, port, catchUp } = setup();
  port.channels = ['a'];
  history.lastId = '7-0';
  catchUp.subscribing('a', Promise.resolve(), () => true);
  await waitFor(() => history.reads.length === 1);
  await new Promise((resolve) => setImmediate(resolve));
  catchUp.brokerDown();
  history.keep('a', '7-1');
  catchUp.brokerUp();
  await waitFor(() => !catchUp.queueing);
  expect(history.reads[1]).toEqual(new Map([['a', '7-0']]));
  expect(port.delivered).toEqual(['a:7-1']);
});

test('a failing read is retried with backoff; the queue keeps filling meanwhile', async () => {
  const { history, port, catchUp, live } = setup();
  port.lastReceived = '5-0';
  catchUp.brokerDown();
  history.failures = 2;
  history.keep('a', '5-1');
  catchUp.brokerUp();
  await waitFor(() => history.reads.length === 2);
  expect(live('a', '5-2')).toBe(true);
  await waitFor(() => !catchUp.queueing);
  expect(history.reads).toHaveLength(3);
  expect(port.delivered).toEqual(['a:5-1', 'a:5-2']);
});

test('down again during the catch-up: nothing is delivered, events keep queueing for the next recovery', async () => {
  const { history, port, catchUp, live } = setup();
  port.lastReceived = '5-0';
  catchUp.brokerDown();
  history.keep('a', '5-1');
  let openGate!: () => void;
  history.gate = new Promise((resolve) => (openGate = resolve));
  catchUp.brokerUp();
  await waitFor(() => history.reads.length === 1);
  port.healthy = false;
  catchUp.brokerDown();
  openGate();
  await new Promise((resolve) => setTimeout(resolve, 20));
  expect(port.delivered).toEqual([]);
  expect(live('a', '5-2')).toBe(true);
  history.gate = undefined;
  port.healthy = true;
  catchUp.brokerUp();
  await waitFor(() => !catchUp.queueing);
  expect(port.delivered).toEqual(['a:5-1', 'a:5-2']);
});

test('whenCaughtUp resolves once the catch-up is done, or when the hub closes', async () => {
  const { history, catchUp } = setup();
  catchUp.brokerDown();
  history.failures = 1;
  const done = jest.fn();
  void catchUp.whenCaughtUp().then(done);
  catchUp.brokerUp();
  await waitFor(() => done.mock.calls.length === 1);
  expect(catchUp.queueing).toBe(false);

  catchUp.brokerDown();
  const closed = jest.fn();
  void catchUp.whenCaughtUp().then(closed);
  catchUp.close();
  await waitFor(() => closed.mock.calls.length === 1);
});

test('a long outage is caught up page by page: every event once, in id order across channels, no read over a page', async () => {
  const { history, port, catchUp, live } = setup();
  port.lastReceived = '5-0';
  catchUp.brokerDown();
  const expected: string[] = [];
  for (let i = 0; i < 300; i++) {
    const channel = i % 5 === 0 ? 'b' : 'a';
    history.keep(channel, `6-${i}`);
    expected.push(`${channel}:6-${i}`);
  }
  // Live copies that arrived while catching up: the tail of the read, and one newer.
  expect(live('a', '6-299')).toBe(true);
  expect(live('a', '6-300')).toBe(true);
  catchUp.brokerUp();
  await waitFor(() => !catchUp.queueing);
  expect(port.delivered).toEqual([...expected, 'a:6-300']);
  expect(Math.max(...history.returned)).toBeLessThanOrEqual(PAGE_EVENTS);
  expect(history.reads.length).toBeGreaterThan(300 / PAGE_EVENTS);
  expect(catchUp.eventsCaughtUp).toBe(300);
});

test('ids ordered per channel (Redis Cluster): each channel is read after its own last id, and no queued event is judged by another channel’s', async () => {
  const history = new FakeHistory();
  const delivered = new Map<string, string>([
    ['a', '3600000-0'], // published by a process an hour fast
    ['b', '10-0'],
  ]);
  const port = new FakePort();
  const perChannel: CatchUpPort = {
    listenedChannels: () => port.listenedChannels(),
    lastReceivedId: () => '3600000-0',
    lastDeliveredOn: (channel) => delivered.get(channel),
    // The hub drops copies per channel (core/positions.ts); this stands in for it.
    deliver: (channel, event, id) => {
      const last = parseEventId(delivered.get(channel));
      if (id !== undefined && last !== undefined && compareIdParts(id, last) <= 0) return;
      if (event.id !== undefined) delivered.set(channel, event.id);
      port.deliver(channel, event, id);
    },
    brokerHealthy: () => true,
    closed: () => false,
  };
  const catchUp = new CatchUp(perChannel, history, LIMITS, silentLogger);
  catchUp.brokerDown();
  history.keep('a', '3600001-0');
  history.keep('b', '11-0', '12-0');
  // Queued while down: b's 13-0 is far below a's ids, and new all the same; 12-0 is a copy.
  for (const [channel, id] of [
    ['b', '12-0'],
    ['b', '13-0'],
  ] as const) {
    expect(catchUp.intercept(channel, { event: 'm', data: 'x', id }, parseEventId(id))).toBe(true);
  }
  catchUp.brokerUp();
  await waitFor(() => !catchUp.queueing);
  expect(history.reads[0]).toEqual(
    new Map([
      ['a', '3600000-0'],
      ['b', '10-0'],
    ]),
  );
  expect(port.delivered).toEqual(['b:11-0', 'b:12-0', 'a:3600001-0', 'b:13-0']);
  // No hub-wide floor: a later live event on b below a's ids still passes.
  expect(catchUp.intercept('b', { event: 'm', data: 'x', id: '14-0' }, parseEventId('14-0'))).toBe(false);
});
