// The heartbeat bound on a real socket: on an idle stream, the gap between
// `: ping`s as the client receives them never exceeds `heartbeat` + 400 ms
// (the stated tolerance: timers and delivery on a shared, loaded 2-core
// machine), and pings do not come twice per heartbeat (no gap under half a
// heartbeat: a late ping followed by an on-time one shortens one gap, so the
// lower bound cannot be tighter here). The exact bound, with fake timers:
// __tests__/unit/heartbeat.test.ts.
import http from 'node:http';
import { createHub, fromQuery, sseMiddleware } from '../../src/index';
import type { Hub } from '../../src/core/hub';
import { listen, type Listening } from '../helpers/listen';
import { waitFor } from '../helpers/wait-for';

const HEARTBEAT = 600;
const TOLERANCE_MS = 400;
const PINGS = 8;

let hub: Hub | undefined;
let server: Listening | undefined;
let request: http.ClientRequest | undefined;

afterEach(async () => {
  request?.destroy();
  await hub?.close();
  await server?.close();
});

test(`idle stream: one ping per ${HEARTBEAT} ms heartbeat, never later than ${TOLERANCE_MS} ms past it, measured at the client`, async () => {
  hub = createHub({ broker: 'memory', heartbeat: HEARTBEAT });
  const handler = sseMiddleware({ hub, channels: fromQuery() });
  server = await listen((req, res) => handler(req, res));
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
  await waitFor(() => pings.length >= PINGS, { timeout: HEARTBEAT * (PINGS + 4), what: `${PINGS} pings` });
  const gaps = [(pings[0] as number) - opened, ...pings.slice(1).map((t, i) => t - (pings[i] as number))];
  console.info(`heartbeat ${HEARTBEAT} ms: gaps ${gaps.join(', ')} ms`);
  for (const gap of gaps) expect(gap).toBeLessThanOrEqual(HEARTBEAT + TOLERANCE_MS);
  for (const gap of gaps.slice(1)) expect(gap).toBeGreaterThanOrEqual(HEARTBEAT / 2);
});
