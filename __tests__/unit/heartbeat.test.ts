// core/heartbeat.ts with fake timers and fake responses: one timer for every
// connection; the bound — on an idle stream no gap between pings (nor between
// the last write and the next ping) exceeds `heartbeat`, and pings come once
// per heartbeat, not more often; checks spread over slices (no burst).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Connection } from '../../src/core/connection';
import { Heartbeat, HEARTBEAT_SLICES } from '../../src/core/heartbeat';
import { PING_FRAME } from '../../src/core/frame';
import { FakeResponse } from '../helpers/fake-response';

const req = { httpVersionMajor: 1, httpVersionMinor: 1, socket: { destroyed: false } } as unknown as IncomingMessage;

let heartbeats: Heartbeat[] = [];
afterEach(() => {
  for (const heartbeat of heartbeats) heartbeat.stop();
  heartbeats = [];
  jest.useRealTimers();
});

function start(heartbeat: number, heartbeatEvent = false): Heartbeat {
  const beat = new Heartbeat({ heartbeat, heartbeatEvent });
  heartbeats.push(beat);
  return beat;
}

/** A connection on `beat` whose pings are timed (fake clock) as they are written. */
function connect(beat: Heartbeat): { connection: Connection; res: FakeResponse; pings: number[] } {
  const res = new FakeResponse();
  const pings: number[] = [];
  const write = res.write.bind(res);
  res.write = (chunk: Buffer): boolean => {
    if (chunk === PING_FRAME) pings.push(Date.now());
    return write(chunk);
  };
  const connection = new Connection(
    req,
    res as unknown as ServerResponse,
    ['all'],
    { retry: 3000, maxBufferedBytes: 1 << 20 },
    beat.ticks,
    () => undefined,
  );
  beat.add(connection);
  return { connection, res, pings };
}

const gaps = (times: number[]): number[] => times.slice(1).map((t, i) => t - (times[i] as number));

describe('the heartbeat bound', () => {
  // The sub-tick is heartbeat / 16 rounded down to whole ms, so a pass is up
  // to 16 ms shorter than `heartbeat`: the stated tolerance below it.
  const TOLERANCE_MS = 2 * HEARTBEAT_SLICES;

  test.each([1000, 15_000, 250, 37])('idle at heartbeat %i ms: every gap ≤ heartbeat and ≥ heartbeat − 16 ms', (hb) => {
    jest.useFakeTimers();
    const beat = start(hb);
    const opened = Date.now();
    const { pings } = connect(beat);
    jest.advanceTimersByTime(hb * 20);
    expect(pings.length).toBeGreaterThanOrEqual(19);
    // The first ping: the stream was never silent for longer than heartbeat.
    expect((pings[0] as number) - opened).toBeLessThanOrEqual(hb);
    for (const gap of gaps(pings)) {
      expect(gap).toBeLessThanOrEqual(hb);
      expect(gap).toBeGreaterThanOrEqual(hb - TOLERANCE_MS);
    }
  });

  test('after a write at any moment, the next ping comes within heartbeat of it', () => {
    jest.useFakeTimers();
    const hb = 1000;
    const beat = start(hb);
    const { connection, pings } = connect(beat);
    // Writes at awkward offsets within the sub-tick grid, each followed by silence.
    for (const offset of [1, 17, 62, 63, 64, 499, 500, 501, 937, 999]) {
      jest.advanceTimersByTime(offset);
      connection.write(Buffer.from('data: x\n\n'));
      const wrote = Date.now();
      const before = pings.length;
      jest.advanceTimersByTime(hb);
      expect(pings.length).toBe(before + 1);
      expect((pings[before] as number) - wrote).toBeLessThanOrEqual(hb);
      // Not pinged soon after a write: it was not silent.
      expect((pings[before] as number) - wrote).toBeGreaterThan(hb / 2 - TOLERANCE_MS);
    }
  });

  test('a stream written more often than every half heartbeat is never pinged', () => {
    jest.useFakeTimers();
    const beat = start(1000);
    const { connection, pings } = connect(beat);
    for (let i = 0; i < 40; i++) {
      jest.advanceTimersByTime(450);
      connection.write(Buffer.from('data: x\n\n'));
    }
    expect(pings).toEqual([]);
  });
});

test('one timer serves every connection, and each sub-tick pings at most one slice', () => {
  jest.useFakeTimers();
  const hb = 1600; // a sub-tick of exactly 100 ms
  const beat = start(hb);
  const streams = Array.from({ length: 800 }, () => connect(beat));
  expect(jest.getTimerCount()).toBe(1);
  const perSubTick: number[] = [];
  for (let t = 0; t < 32; t++) {
    const before = streams.reduce((n, s) => n + s.pings.length, 0);
    jest.advanceTimersByTime(100);
    perSubTick.push(streams.reduce((n, s) => n + s.pings.length, 0) - before);
  }
  expect(Math.max(...perSubTick)).toBeLessThanOrEqual(800 / HEARTBEAT_SLICES);
  // Every stream got one ping per heartbeat over the two heartbeats.
  for (const { pings } of streams) expect(pings).toHaveLength(2);
});

test('a removed connection is no longer pinged', () => {
  jest.useFakeTimers();
  const beat = start(1000);
  const { connection, pings } = connect(beat);
  beat.remove(connection);
  jest.advanceTimersByTime(5000);
  expect(pings).toEqual([]);
});

test('with heartbeatEvent, one frame per pass is shared by every connection', () => {
  jest.useFakeTimers();
  const beat = start(1000, true);
  const a = connect(beat);
  const b = connect(beat);
  jest.advanceTimersByTime(1000);
  const frameOf = (res: FakeResponse): Buffer | undefined => res.chunks.find((c) => c.includes('event: heartbeat'));
  const frame = frameOf(a.res);
  expect(frame?.toString()).toMatch(/^event: heartbeat\ndata: \{"heartbeat":1000,"time":\d+\}\n\n$/);
  // Both connections sit in different slices, checked in the same pass.
  expect(frameOf(b.res)).toBe(frame);
});
