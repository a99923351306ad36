// How often a stream is pinged, measured on a real socket: an idle stream is
// never silent for much longer than `heartbeat`, and pings come no more often
// than intended — every `heartbeat` ms when idle, never while events flow
// faster than half a heartbeat. The hub checks each stream every half
// heartbeat, spread over sub-ticks, and pings one that was silent since the
// previous check.
import { createHub, fromQuery, sseMiddleware, type Hub } from '../../src/index';
import { listen, type Listening } from '../helpers/listen';
import { SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

const HEARTBEAT = 1000;
/**
 * Timer and scheduling jitter allowed on a loaded, shared 2-core machine
 * (server and client share this process's event loop). The failures caught
 * are 500 ms away: a missed check makes a gap of 1.5 heartbeats, a ping at
 * every check a gap of 0.5.
 */
const TOLERANCE = 400;

let hub: Hub;
let server: Listening;
let reader: SseReader | undefined;

beforeEach(async () => {
  hub = createHub({ broker: 'memory', heartbeat: HEARTBEAT });
  server = await listen(sseMiddleware({ hub, channels: fromQuery() }));
});
afterEach(async () => {
  reader?.close();
  await hub.close();
  await server.close();
});

/** Opens a stream and records when each `: ping` arrives. */
async function openTimed(): Promise<{ reader: SseReader; pings: number[]; opened: number }> {
  const opened = Date.now();
  const r = await SseReader.open(`${server.url}/?channels=idle`);
  reader = r;
  const pings: number[] = [];
  r.on('comment', (line: string) => {
    if (line === ': ping') pings.push(Date.now());
  });
  return { reader: r, pings, opened };
}

test(`an idle stream is pinged every ${HEARTBEAT} ms (± ${TOLERANCE} ms): never silent longer, never pinged more often`, async () => {
  const { pings, opened } = await openTimed();
  await waitFor(() => pings.length >= 5, { timeout: 5 * HEARTBEAT + 3000, what: '5 pings' });
  const gaps = [pings[0]! - opened, ...pings.slice(1).map((t, i) => t - pings[i]!)];
  expect(Math.max(...gaps)).toBeLessThanOrEqual(HEARTBEAT + TOLERANCE);
  // The first ping may come early (the stream joins mid-pass); after it, the rhythm is the heartbeat.
  expect(Math.min(...gaps.slice(1))).toBeGreaterThanOrEqual(HEARTBEAT - TOLERANCE);
});

test(`a stream with an event every ${HEARTBEAT / 4} ms gets no ping; once idle, the first comes within a heartbeat`, async () => {
  const { reader: r, pings } = await openTimed();
  await waitFor(() => hub.stats().connections === 1, { what: 'the stream' });
  let lastEvent = 0;
  for (let i = 0; i < 12; i++) {
    await hub.sendEvent('tick', String(i), 'idle');
    await r.waitForEvents(i + 1);
    lastEvent = Date.now();
    await new Promise((resolve) => setTimeout(resolve, HEARTBEAT / 4)); // the traffic's pace, not a wait for an event
  }
  expect(pings).toEqual([]);
  await waitFor(() => pings.length >= 1, { timeout: HEARTBEAT + TOLERANCE + 1000, what: 'the first ping' });
  const silence = pings[0]! - lastEvent;
  expect(silence).toBeLessThanOrEqual(HEARTBEAT + TOLERANCE);
});
