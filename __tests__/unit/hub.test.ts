// core/hub.ts with a fake broker and fake responses (a pure unit test): the
// frame is built once per event and the very same bytes go to every
// subscriber; refcounted broker subscriptions; counters back to zero; a
// closed connection leaves every channel at once; sendEvent validation and timeout.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Broker, BrokerListener } from '../../src/core/broker';
import { BrokerUnavailableError, ChannelNameError, EventError } from '../../src/core/errors';
import type { SseEvent } from '../../src/core/event';
import * as frame from '../../src/core/frame';
import { Hub, WRITES_PER_TURN } from '../../src/core/hub';
import { resolveHubOptions, type HubOptions } from '../../src/core/options';
import { FakeResponse } from '../helpers/fake-response';
import { waitFor } from '../helpers/wait-for';

class FakeBroker implements Broker {
  readonly name = 'fake';
  readonly listeners = new Map<string, BrokerListener>();
  readonly published: [string, SseEvent][] = [];
  subscribeCalls: string[] = [];
  unsubscribeCalls: string[] = [];
  publishResult: () => Promise<void> = () => Promise.resolve();
  closed = false;

  publish(channel: string, event: SseEvent): Promise<void> {
    this.published.push([channel, event]);
    return this.publishResult();
  }
  subscribe(channel: string, listener: BrokerListener): Promise<void> {
    this.subscribeCalls.push(channel);
    this.listeners.set(channel, listener);
    return Promise.resolve();
  }
  unsubscribe(channel: string): Promise<void> {
    this.unsubscribeCalls.push(channel);
    this.listeners.delete(channel);
    return Promise.resolve();
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
  emit(channel: string, event: SseEvent): void {
    this.listeners.get(channel)?.(event);
  }
}

const fakeReq = (): IncomingMessage =>
  ({ httpVersionMajor: 1, httpVersionMinor: 1, socket: { destroyed: false } }) as unknown as IncomingMessage;

let hubs: Hub[] = [];
function makeHub(options: HubOptions = {}): { hub: Hub; broker: FakeBroker } {
  const broker = new FakeBroker();
  const hub = new Hub(broker, resolveHubOptions({ ...options, broker }, {}));
  hubs.push(hub);
  return { hub, broker };
}
function open(hub: Hub, channels: string[]): FakeResponse {
  const res = new FakeResponse();
  hub.attach(fakeReq(), res as unknown as ServerResponse, channels);
  return res;
}

afterEach(async () => {
  jest.restoreAllMocks();
  jest.useRealTimers();
  await Promise.all(hubs.map((h) => h.close()));
  hubs = [];
});

test('a stream starts with the documented headers and the retry + comment preamble', () => {
  const { hub } = makeHub({ retry: 1234 });
  const res = open(hub, ['all']);
  expect(res.status).toBe(200);
  expect(res.headers).toEqual({
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    'X-Accel-Buffering': 'no',
    Connection: 'keep-alive',
  });
  expect(res.text()).toBe('retry: 1234\n: sse-hub\n\n');
});

test('build once, write many: encodeFrame runs once per event and every subscriber gets the same Buffer', async () => {
  const { hub, broker } = makeHub();
  const responses = Array.from({ length: 200 }, () => open(hub, ['all']));
  const spy = jest.spyOn(frame, 'encodeFrame');
  broker.emit('all', { event: 'message', data: '{"type":"message"}' });
  broker.emit('all', { event: 'message', data: 'second' });
  // 400 writes are more than one turn's budget: the second event goes out on the next turn.
  await waitFor(() => hub.stats().framesWritten === 400, { what: 'both events written' });
  expect(spy).toHaveBeenCalledTimes(2);
  const first = spy.mock.results[0]?.value as Buffer;
  const second = spy.mock.results[1]?.value as Buffer;
  for (const res of responses) {
    // Same object, not merely equal bytes.
    expect(res.chunks[1]).toBe(first);
    expect(res.chunks[2]).toBe(second);
  }
  expect(first.toString()).toBe('event: message\ndata: {"type":"message"}\n\n');
  expect(hub.stats()).toMatchObject({ eventsReceived: 2, framesWritten: 400 });
});

test('an event reaches only its channel', () => {
  const { hub, broker } = makeHub();
  const all = open(hub, ['all']);
  const other = open(hub, ['other']);
  broker.emit('all', { event: 'message', data: 'x' });
  expect(all.chunks).toHaveLength(2);
  expect(other.chunks).toHaveLength(1);
});

test('one broker subscription per channel, however many listeners; unsubscribed when the last leaves', async () => {
  const { hub, broker } = makeHub();
  const responses = Array.from({ length: 1000 }, () => open(hub, ['all']));
  expect(broker.subscribeCalls).toEqual(['all']);
  expect(hub.stats()).toMatchObject({ connections: 1000, channels: 1 });
  for (const res of responses.slice(0, 999)) res.emit('close');
  expect(broker.unsubscribeCalls).toEqual([]);
  responses[999]?.emit('close');
  expect(broker.unsubscribeCalls).toEqual(['all']);
  expect(hub.stats()).toMatchObject({ connections: 0, channels: 0 });
});

test('a closed connection is dropped from every one of its channels at once', () => {
  const { hub, broker } = makeHub();
  const many = open(hub, ['a', 'b', 'c']);
  const stays = open(hub, ['b']);
  expect(hub.stats()).toMatchObject({ connections: 2, channels: 3 });
  many.emit('close');
  expect(hub.stats()).toMatchObject({ connections: 1, channels: 1 });
  expect(broker.unsubscribeCalls.sort()).toEqual(['a', 'c']);
  for (const channel of ['a', 'b', 'c']) broker.emit(channel, { event: 'm', data: channel });
  expect(many.chunks).toHaveLength(1);
  expect(stays.chunks).toHaveLength(2);
});

test('1000 connect/disconnect cycles leave counters at zero and nothing subscribed', () => {
  const { hub, broker } = makeHub();
  const responses: FakeResponse[] = [];
  for (let i = 0; i < 1000; i++) {
    const res = open(hub, ['all', `u${i % 10}`]);
    responses.push(res);
    res.emit('close');
  }
  expect(hub.stats()).toMatchObject({ connections: 0, channels: 0 });
  expect(broker.listeners.size).toBe(0);
  expect(broker.subscribeCalls.length).toBe(broker.unsubscribeCalls.length);
  // A closed response may keep its (shared, static) listeners: it is garbage
  // once closed. What must not grow is anything the hub itself holds.
  for (const res of responses) expect(res.listenerCount('close')).toBeLessThanOrEqual(1);
});

test('heartbeat: an idle stream gets `: ping` from one shared timer; a busy one does not', () => {
  jest.useFakeTimers();
  const { hub, broker } = makeHub({ heartbeat: 1000 });
  const idle = open(hub, ['idle']);
  const busy = open(hub, ['busy']);
  for (let t = 0; t < 4; t++) {
    jest.advanceTimersByTime(500);
    broker.emit('busy', { event: 'm', data: String(t) });
  }
  expect(idle.text()).toContain(': ping\n\n');
  expect(busy.text()).not.toContain(': ping');
  // The fan-out's per-turn budget reset (a setImmediate after a busy turn) has run;
  // what stays is the one heartbeat timer, whatever the number of streams.
  jest.advanceTimersByTime(0);
  expect(jest.getTimerCount()).toBe(1);
});

test('a slow client past maxBufferedBytes is closed and counted; the others still get the frame', () => {
  const { hub, broker } = makeHub({ maxBufferedBytes: 100 });
  const slow = open(hub, ['all']);
  const fast = open(hub, ['all']);
  slow.writableLength = 101;
  broker.emit('all', { event: 'm', data: 'x' });
  expect(slow.destroyed).toBe(true);
  expect(fast.chunks).toHaveLength(2);
  expect(hub.stats()).toMatchObject({ connections: 1, slowClientsClosed: 1 });
});

test('one large event alone never closes a stream (the bound is checked before writing)', () => {
  const { hub, broker } = makeHub({ maxBufferedBytes: 100 });
  const res = open(hub, ['all']);
  broker.emit('all', { event: 'm', data: 'x'.repeat(10_000) });
  expect(res.destroyed).toBe(false);
  expect(res.chunks).toHaveLength(2);
});

describe('sendEvent', () => {
  test('channel is required: a TypeError, nothing published', async () => {
    const { hub, broker } = makeHub();
    for (const channel of [undefined, '', 'a b', '../x', 'x'.repeat(129)]) {
      const err = await hub.sendEvent('message', 'x', channel as string).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ChannelNameError);
      expect(err).toBeInstanceOf(TypeError);
    }
    expect(broker.published).toEqual([]);
  });

  test('an event name with a newline is an EventError', async () => {
    const { hub } = makeHub();
    await expect(hub.sendEvent('a\nb', 'x', 'all')).rejects.toThrow(EventError);
  });

  test('data: a string verbatim, anything else JSON-encoded', async () => {
    const { hub, broker } = makeHub();
    await hub.sendEvent('message', '{"a": 1}', 'all');
    await hub.sendEvent('message', { a: 1 }, 'all');
    expect(broker.published).toEqual([
      ['all', { event: 'message', data: '{"a": 1}' }],
      ['all', { event: 'message', data: '{"a":1}' }],
    ]);
  });

  test('resolves only once the broker accepted the event', async () => {
    const { hub, broker } = makeHub();
    let accept!: () => void;
    broker.publishResult = () => new Promise((resolve) => (accept = resolve));
    let settled = false;
    const sent = hub.sendEvent('message', 'x', 'all').then(() => (settled = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    accept();
    await sent;
    expect(settled).toBe(true);
  });

  test('a broker that never answers: rejects after sendTimeout with an error naming the broker; no timer left', async () => {
    jest.useFakeTimers();
    const { hub, broker } = makeHub({ sendTimeout: 5000 });
    broker.publishResult = () => new Promise(() => undefined);
    const sent = hub.sendEvent('message', 'x', 'all');
    const timersWhileWaiting = jest.getTimerCount();
    jest.advanceTimersByTime(5000);
    const err = await sent.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BrokerUnavailableError);
    expect(err).toMatchObject({ broker: 'fake' });
    expect((err as Error).message).toMatch(/the fake broker did not accept the event on channel "all" within 5000 ms/);
    expect(timersWhileWaiting).toBe(2); // the heartbeat + this send's timeout
    expect(jest.getTimerCount()).toBe(1); // only the heartbeat
  });

  test('a broker rejection passes through and clears the timeout', async () => {
    jest.useFakeTimers();
    const { hub, broker } = makeHub();
    broker.publishResult = () => Promise.reject(new BrokerUnavailableError('fake', 'down'));
    await expect(hub.sendEvent('message', 'x', 'all')).rejects.toThrow('down');
    expect(jest.getTimerCount()).toBe(1);
  });
});

describe('close', () => {
  test('ends every stream, clears the heartbeat, closes the broker; idempotent; later sends reject', async () => {
    jest.useFakeTimers();
    const { hub, broker } = makeHub();
    const a = open(hub, ['a']);
    const b = open(hub, ['a', 'b']);
    await Promise.all([hub.close(), hub.close()]);
    expect(a.ended && b.ended).toBe(true);
    expect(broker.closed).toBe(true);
    expect(jest.getTimerCount()).toBe(0);
    expect(hub.stats()).toMatchObject({ connections: 0, channels: 0 });
    expect(hub.isHealthy()).toBe(false);
    await expect(hub.sendEvent('m', 'x', 'a')).rejects.toMatchObject({ code: 'SSE_ERR_HUB_CLOSED' });
    expect(() => open(hub, ['a'])).toThrow(/shutting down/);
  });
});

describe('maxReplays', () => {
  test('a resume past the cap waits its turn on an open stream, counted, and is served first come first served; a plain stream is not affected', async () => {
    const { hub } = makeHub({ history: true, maxReplays: 1, retry: 1000 });
    const { id } = await hub.sendEvent('m', 'x', 'all');
    const resume = (): FakeResponse => {
      const res = new FakeResponse();
      hub.attach(fakeReq(), res as unknown as ServerResponse, ['all'], { lastEventId: '1-0' });
      return res;
    };
    const running = resume();
    running.writableLength = 10 * 1024 * 1024; // never reads: its replay stays paced
    expect(hub.stats().replaysActive).toBe(1);
    const gone = resume();
    const waiting = resume();
    expect(waiting.status).toBe(200);
    expect(waiting.ended).toBe(false);
    expect(waiting.text()).not.toContain(`id: ${id}`);
    expect(hub.stats()).toMatchObject({ replaysQueued: 2, replaysWaiting: 2, replaysActive: 1 });
    gone.emit('close'); // a waiting client that leaves gives up its place
    await waitFor(() => hub.stats().replaysWaiting === 1, { what: 'the leaver to leave the queue' });
    expect(open(hub, ['all']).ended).toBe(false);
    // Once the running replay is done, the waiting resume is served, on the same stream.
    running.writableLength = 0;
    running.emit('drain');
    await waitFor(() => waiting.text().includes(`id: ${id}`), { what: 'the waiting resume to be served' });
    expect(waiting.ended).toBe(false);
    expect(hub.stats().replaysWaiting).toBe(0);
  });
});

describe('fan-out budget', () => {
  test('one broker read for many listeners yields to the event loop between turns, in order', async () => {
    const { hub, broker } = makeHub();
    const streams = Array.from({ length: 1000 }, () => open(hub, ['a']));
    for (let i = 0; i < 100; i++) broker.emit('a', { event: 'message', data: String(i) });
    // 100 events × 1000 listeners arrived in one turn: only the budget was written in it.
    expect(hub.stats().framesWritten).toBeLessThanOrEqual(WRITES_PER_TURN);
    // Queued behind the hub's next turn: it runs before the rest is written.
    const between = await new Promise<number>((resolve) => setImmediate(() => resolve(hub.stats().framesWritten)));
    expect(between).toBeLessThan(100 * 1000);
    await waitFor(() => hub.stats().framesWritten === 100 * 1000, { what: 'the backlog to be written' });
    const data = [...(streams[0] as FakeResponse).text().matchAll(/^data: (\d+)$/gm)].map((m) => Number(m[1]));
    expect(data).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });
});

test('an event for more listeners than a turn has left is written a slice per turn, before the next event; a stream that joins meanwhile gets only what follows', async () => {
  const { hub, broker } = makeHub();
  const count = 2 * WRITES_PER_TURN + 10;
  const streams = Array.from({ length: count }, () => open(hub, ['a']));
  broker.emit('a', { event: 'message', data: 'first' });
  broker.emit('a', { event: 'message', data: 'second' });
  // One turn's budget of the first event only; the second waits behind it.
  expect(hub.stats().framesWritten).toBe(WRITES_PER_TURN);
  expect((streams[count - 1] as FakeResponse).text()).not.toContain('data: first');
  const late = open(hub, ['a']);
  await waitFor(() => hub.stats().framesWritten === 2 * count + 1, { what: 'both events written' });
  for (const res of streams) {
    expect([...res.text().matchAll(/^data: (\w+)$/gm)].map((m) => m[1])).toEqual(['first', 'second']);
  }
  expect([...late.text().matchAll(/^data: (\w+)$/gm)].map((m) => m[1])).toEqual(['second']);
});

describe('close with drainTime', () => {
  test('ends the streams in batches over drainTime, each with a jittered retry:; the rest keep receiving meanwhile', async () => {
    jest.useFakeTimers();
    const { hub, broker } = makeHub({ drainTime: 1000, retry: 2000 });
    const streams = Array.from({ length: 10 }, () => open(hub, ['a']));
    const closed = hub.close();
    const ended = (): number => streams.filter((res) => res.ended).length;
    expect(ended()).toBe(1);
    broker.emit('a', { event: 'm', data: 'during the drain' });
    await jest.advanceTimersByTimeAsync(450);
    expect(ended()).toBeGreaterThanOrEqual(4);
    expect(ended()).toBeLessThanOrEqual(6);
    await jest.advanceTimersByTimeAsync(600);
    await closed;
    expect(ended()).toBe(10);
    expect(broker.closed).toBe(true);
    const retries = streams.map((res) => Number(/retry: (\d+)\n\n$/.exec(res.text())?.[1]));
    for (const retry of retries) {
      expect(retry).toBeGreaterThanOrEqual(2000);
      expect(retry).toBeLessThan(4000);
    }
    // Only the first batch was gone when the event came.
    expect(streams.filter((res) => res.text().includes('during the drain'))).toHaveLength(9);
  });
});
