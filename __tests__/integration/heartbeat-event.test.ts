// A heartbeat the page can see (server half): with
// heartbeatEvent / --heartbeat-event the heartbeat is `event: heartbeat` with
// data {"heartbeat":<ms>,"time":<epoch ms>} instead of a `: ping` comment, it
// is also the first event of every stream (so sse.js learns the interval), and
// it is built once per tick: every idle connection gets the same Buffer.
import http from 'node:http';
import { createHub, fromQuery, OptionError, sseMiddleware } from '../../src/index';
import type { Hub } from '../../src/core/hub';
import { listen, type Listening } from '../helpers/listen';
import { startRunserver, type RunningServer } from '../helpers/run-cli';
import { SseReader, type ParsedEvent } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

const HEARTBEAT = 200;
const heartbeats = (reader: SseReader): ParsedEvent[] => reader.events.filter((e) => e.event === 'heartbeat');

describe('heartbeatEvent', () => {
  let hub: Hub | undefined;
  let server: Listening | undefined;
  let readers: SseReader[] = [];
  /** Every chunk each response was given, in order: to compare Buffer identity across connections. */
  let writes: unknown[][] = [];

  async function start(options: { heartbeatEvent?: boolean }): Promise<void> {
    hub = createHub({ broker: 'memory', heartbeat: HEARTBEAT, ...options });
    const handler = sseMiddleware({ hub, channels: fromQuery() });
    server = await listen((req: http.IncomingMessage, res: http.ServerResponse) => {
      const log: unknown[] = [];
      writes.push(log);
      const write = res.write.bind(res) as (...args: unknown[]) => boolean;
      res.write = ((chunk: unknown, ...rest: unknown[]) => {
        log.push(chunk);
        return write(chunk, ...rest);
      }) as typeof res.write;
      handler(req, res);
    });
  }

  async function open(path = '/?channels=all'): Promise<SseReader> {
    const reader = await SseReader.open(`${server!.url}${path}`);
    readers.push(reader);
    return reader;
  }

  afterEach(async () => {
    for (const reader of readers) reader.close();
    readers = [];
    writes = [];
    await hub?.close();
    await server?.close();
    hub = undefined;
    server = undefined;
  });

  test('the stream opens with retry, the comment, then a heartbeat event carrying the interval', async () => {
    await start({ heartbeatEvent: true });
    const before = Date.now();
    const reader = await open();
    await reader.waitForEvents(1);
    expect(reader.raw).toMatch(/^retry: \d+\n: [^\n]*\n\nevent: heartbeat\ndata: \{"heartbeat":200,"time":\d+\}\n\n/);
    const first = JSON.parse(reader.events[0]!.data) as { heartbeat: number; time: number };
    expect(first.heartbeat).toBe(HEARTBEAT);
    // The tick's clock: at most one tick (heartbeat / 2) old.
    expect(first.time).toBeGreaterThanOrEqual(before - HEARTBEAT);
    expect(first.time).toBeLessThanOrEqual(Date.now());
  });

  test('an idle stream gets heartbeat events, never a `: ping` comment, with increasing times', async () => {
    await start({ heartbeatEvent: true });
    const reader = await open();
    await waitFor(() => heartbeats(reader).length >= 4, { timeout: 5 * HEARTBEAT * 4, what: '4 heartbeat events' });
    expect(reader.comments.filter((c) => c === 'ping')).toEqual([]);
    expect(reader.raw).not.toContain(': ping');
    const times = heartbeats(reader).map((e) => (JSON.parse(e.data) as { heartbeat: number; time: number }).time);
    for (let i = 1; i < times.length; i++) expect(times[i]!).toBeGreaterThan(times[i - 1]!);
    for (const e of heartbeats(reader)) expect(JSON.parse(e.data)).toMatchObject({ heartbeat: HEARTBEAT });
  });

  test('built once per tick: two idle connections are written the very same Buffer', async () => {
    await start({ heartbeatEvent: true });
    const a = await open();
    const b = await open();
    await waitFor(() => heartbeats(a).length >= 3 && heartbeats(b).length >= 3, {
      timeout: 5000,
      what: '3 heartbeats on both streams',
    });
    const frames = (): Buffer[][] =>
      writes.map((log) =>
        log.filter(
          (chunk): chunk is Buffer => Buffer.isBuffer(chunk) && chunk.toString().startsWith('event: heartbeat'),
        ),
      );
    expect(frames()).toHaveLength(2);
    // Two idle streams fall due in the same tick; on a loaded machine a tick can
    // come late and split them once, so wait for two ticks that were shared.
    const shared = (): number => {
      const [first, second] = frames() as [Buffer[], Buffer[]];
      return first.filter((frame) => second.includes(frame)).length;
    };
    await waitFor(() => shared() >= 2, { timeout: 10_000, what: 'two heartbeat frames written to both streams' });
  });

  test('off (the default): `: ping` comments and no heartbeat event', async () => {
    await start({});
    const reader = await open();
    await waitFor(() => reader.comments.filter((c) => c === 'ping').length >= 2, { what: '2 pings' });
    expect(heartbeats(reader)).toEqual([]);
    expect(reader.raw).not.toContain('event: heartbeat');
  });

  test('a heartbeatEvent that is not a boolean is refused when the hub is created', () => {
    expect(() => createHub({ broker: 'memory', heartbeatEvent: 'yes' as unknown as boolean })).toThrow(OptionError);
    expect(() => createHub({ broker: 'memory', heartbeatEvent: 'yes' as unknown as boolean })).toThrow(
      /heartbeatEvent must be true or false, got "yes"/,
    );
  });
});

describe('sse-runserver --heartbeat-event', () => {
  let server: RunningServer | undefined;
  let reader: SseReader | undefined;
  afterEach(async () => {
    reader?.close();
    reader = undefined;
    await server?.stop();
    server = undefined;
  });

  test('--heartbeat-event --heartbeat 300: heartbeat events with the interval, no pings', async () => {
    server = await startRunserver(['--heartbeat-event', '--heartbeat', '300']);
    reader = await SseReader.open(`${server.url}/?channels=all`);
    await waitFor(() => heartbeats(reader!).length >= 2, { timeout: 5000, what: '2 heartbeat events' });
    expect(reader.events[0]).toMatchObject({ event: 'heartbeat' });
    expect(JSON.parse(reader.events[0]!.data)).toMatchObject({ heartbeat: 300 });
    expect(reader.raw).not.toContain(': ping');
  });

  test('SSE_HEARTBEAT_EVENT=1 does the same', async () => {
    server = await startRunserver(['--heartbeat', '300'], { SSE_HEARTBEAT_EVENT: '1' });
    reader = await SseReader.open(`${server.url}/?channels=all`);
    await reader.waitForEvents(1);
    expect(reader.events[0]).toMatchObject({ event: 'heartbeat' });
    expect(JSON.parse(reader.events[0]!.data)).toMatchObject({ heartbeat: 300 });
  });
});
