// The heartbeat bound on a real socket: on an idle stream, the gap between
// `: ping`s as the client receives them never exceeds `heartbeat` plus the
// stated tolerance, and pings do not come twice per heartbeat (no gap under
// half a heartbeat: a late ping followed by an on-time one shortens one gap,
// so the lower bound cannot be tighter here). Tolerance: 100 ms for delivery,
// plus how late this process's own timers ran over the same span — a
// reference setInterval at the heartbeat's sub-tick, measured alongside — so
// that a loaded machine widens the bound by exactly what it cost, and an idle
// one keeps it tight. A stream that carries events more often than every half
// heartbeat is never pinged. The exact bound, with fake timers: __tests__/unit/heartbeat.test.ts.
import http from 'node:http';
import { HEARTBEAT_SLICES } from '../../src/core/heartbeat';
import { createHub, fromQuery, sseMiddleware } from '../../src/index';
import type { Hub } from '../../src/core/hub';
import { listen, type Listening } from '../helpers/listen';
import { SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

const HEARTBEAT = 600;
const DELIVERY_MS = 100;
const PINGS = 8;

let hub: Hub | undefined;
let server: Listening | undefined;
let request: http.ClientRequest | undefined;
let reference: NodeJS.Timeout | undefined;
let reader: SseReader | undefined;

afterEach(async () => {
  clearInterval(reference);
  request?.destroy();
  reader?.close();
  await hub?.close();
  await server?.close();
});

test(`idle stream: one ping per ${HEARTBEAT} ms heartbeat, never later than the tolerance past it, measured at the client`, async () => {
  hub = createHub({ broker: 'memory', heartbeat: HEARTBEAT });
  const handler = sseMiddleware({ hub, channels: fromQuery() });
  server = await listen((req, res) => handler(req, res));
  // The reference: the same timer period the heartbeat uses.
  const subTick = Math.floor(HEARTBEAT / 2 / HEARTBEAT_SLICES);
  const ticks: number[] = [];
  reference = setInterval(() => ticks.push(Date.now()), subTick);
  const pings: number[] = [];
  let opened = 0;
  await new Promise<void>((resolve, reject) => {
    request = http.get(`${server!.url}/?channels=idle`, (res) => {
      opened = Date.now();
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        for (const _ of chunk.matchAll(/^: ping\n\n/gm)) pings.push(Date.now());
      });
      resolve();
    });
    request.on('error', reject);
  });
  await waitFor(() => pings.length >= PINGS, { timeout: HEARTBEAT * PINGS * 3, what: `${PINGS} pings` });
  // The most that 2 × HEARTBEAT_SLICES reference ticks (one heartbeat) overran.
  const span = 2 * HEARTBEAT_SLICES;
  let lateness = 0;
  for (let i = span; i < ticks.length; i++) {
    lateness = Math.max(lateness, (ticks[i] as number) - (ticks[i - span] as number) - span * subTick);
  }
  const tolerance = DELIVERY_MS + lateness;
  const gaps = [(pings[0] as number) - opened, ...pings.slice(1).map((t, i) => t - (pings[i] as number))];
  console.info(
    `heartbeat ${HEARTBEAT} ms: gaps ${gaps.join(', ')} ms; tolerance ${tolerance} ms (timers ran up to ${lateness} ms late per heartbeat)`,
  );
  for (const gap of gaps) expect(gap).toBeLessThanOrEqual(HEARTBEAT + tolerance);
  for (const gap of gaps.slice(1)) expect(gap).toBeGreaterThanOrEqual(HEARTBEAT / 2);
});

/** For the busy stream: events every quarter heartbeat leave half a heartbeat of slack before a check would ping. */
const BUSY_HEARTBEAT = 1000;
/** Timers and scheduling on a loaded, shared machine; a missed check would be 500 ms late. */
const BUSY_TOLERANCE_MS = 400;

test(`busy stream: no ping while an event comes every ${BUSY_HEARTBEAT / 4} ms; once idle, the first within heartbeat + ${BUSY_TOLERANCE_MS} ms`, async () => {
  hub = createHub({ broker: 'memory', heartbeat: BUSY_HEARTBEAT });
  const handler = sseMiddleware({ hub, channels: fromQuery() });
  server = await listen((req, res) => handler(req, res));
  reader = await SseReader.open(`${server.url}/?channels=busy`);
  const pings: number[] = [];
  reader.on('comment', (line: string) => {
    if (line === ': ping') pings.push(Date.now());
  });
  await waitFor(() => hub!.stats().connections === 1, { what: 'the stream' });
  let lastEvent = 0;
  for (let i = 0; i < 12; i++) {
    await hub.sendEvent('tick', String(i), 'busy');
    await reader.waitForEvents(i + 1);
    lastEvent = Date.now();
    await new Promise((resolve) => setTimeout(resolve, BUSY_HEARTBEAT / 4)); // the traffic's pace, not a wait for an event
  }
  expect(pings).toEqual([]);
  await waitFor(() => pings.length >= 1, { timeout: 2 * BUSY_HEARTBEAT, what: 'the first ping once idle' });
  expect((pings[0] as number) - lastEvent).toBeLessThanOrEqual(BUSY_HEARTBEAT + BUSY_TOLERANCE_MS);
});
