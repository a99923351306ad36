// sse-runserver behind real nginx with the `location /sse/` block of
// docs/deployment.md ("Behind nginx"): events published 20 ms apart arrive through nginx
// with a p99 extra delay under 50 ms compared with the same events read
// directly. Latency = arrival time − the publish timestamp carried in the data,
// both read from this process's monotonic clock.
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Nginx, NGINX_PATH, nginxBlockFrom } from '../helpers/nginx';
import { describeWithTools } from '../helpers/require-tool';
import { ROOT, startRunserver, type RunningServer } from '../helpers/run-cli';
import { SseReader, type ParsedEvent } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

const DOC = join(ROOT, 'docs', 'deployment.md');
const EVENTS = 100;
const INTERVAL_MS = 20;
const P99_BUDGET_MS = 50;

/** The documented block, pointed at this test's sse-runserver instead of :8888. */
function documentedBlock(upstreamPort: number): string {
  const block = nginxBlockFrom(DOC);
  if (!block.includes('127.0.0.1:8888'))
    throw new Error(`the nginx block in ${DOC} no longer proxies to 127.0.0.1:8888`);
  return block.replaceAll('127.0.0.1:8888', `127.0.0.1:${upstreamPort}`);
}

function percentile(sorted: number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)] as number;
}

function summary(values: number[]): { p50: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const round = (v: number): number => Math.round(v * 100) / 100;
  return {
    p50: round(percentile(sorted, 50)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted[sorted.length - 1] as number),
  };
}

describeWithTools([NGINX_PATH], 'sse-runserver behind nginx (the docs/deployment.md block)', () => {
  let runserver: RunningServer | undefined;
  let nginx: Nginx | undefined;
  let readers: SseReader[] = [];

  beforeAll(async () => {
    runserver = await startRunserver(['--path', '/sse/']);
    nginx = await Nginx.start(documentedBlock(runserver.port));
  });
  afterEach(() => {
    for (const reader of readers) reader.close();
    readers = [];
  });
  afterAll(async () => {
    await nginx?.stop();
    await runserver?.stop();
  });

  async function open(url: string): Promise<SseReader> {
    const reader = await SseReader.open(url);
    readers.push(reader);
    return reader;
  }

  async function publish(channel: string, data: string): Promise<void> {
    const res = await fetch(`${runserver!.url}/publish`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ channel, event: 'message', data }),
    });
    expect(res.status).toBe(202);
    await res.arrayBuffer();
  }

  test('the stream comes through nginx with its headers and preamble; /publish is not reachable through it', async () => {
    const reader = await open(`${nginx!.url}/sse/?channels=all`);
    expect(reader.status).toBe(200);
    expect(reader.headers.server).toMatch(/^nginx/);
    expect(reader.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(reader.headers['content-encoding']).toBeUndefined();
    await waitFor(() => reader.retry !== undefined, { what: 'the retry: preamble through nginx' });

    const through = await fetch(`${nginx!.url}/sse/publish`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ channel: 'all', event: 'message', data: 'nope' }),
    });
    expect(through.status).toBe(404);
    await through.arrayBuffer();
    const root = await fetch(`${nginx!.url}/publish`, { method: 'POST', body: '{}' });
    expect(root.status).toBe(404); // nginx itself: only /sse/ is proxied
    await root.arrayBuffer();
  });

  test(`${EVENTS} events ${INTERVAL_MS} ms apart: p99 extra delay through nginx < ${P99_BUDGET_MS} ms`, async () => {
    const channel = 'latency';
    const direct = await open(`${runserver!.url}/sse/?channels=${channel}`);
    const proxied = await open(`${nginx!.url}/sse/?channels=${channel}`);
    expect([direct.status, proxied.status]).toEqual([200, 200]);
    await waitFor(() => direct.retry !== undefined && proxied.retry !== undefined, { what: 'both streams open' });

    const arrivals = { direct: new Map<number, number>(), proxied: new Map<number, number>() };
    const record = (into: Map<number, number>) => (event: ParsedEvent) => {
      const { seq } = JSON.parse(event.data) as { seq: number };
      into.set(seq, performance.now());
    };
    direct.on('event', record(arrivals.direct));
    proxied.on('event', record(arrivals.proxied));

    // Paced on an absolute schedule so the interval does not drift; publishing is
    // the workload here, every wait for results below is on the events themselves.
    const sentAt: number[] = [];
    const start = performance.now();
    for (let seq = 0; seq < EVENTS; seq++) {
      const due = start + seq * INTERVAL_MS;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      sentAt[seq] = performance.now();
      await publish(channel, JSON.stringify({ seq, sentAt: sentAt[seq], pad: 'x'.repeat(64) }));
    }
    await waitFor(() => arrivals.direct.size === EVENTS && arrivals.proxied.size === EVENTS, {
      timeout: 10_000,
      what: `${EVENTS} events on both streams (direct ${arrivals.direct.size}, nginx ${arrivals.proxied.size})`,
    });

    // Same events, same order, same bytes through nginx.
    expect(proxied.events.map((e) => e.data)).toEqual(direct.events.map((e) => e.data));
    const seqs = proxied.events.map((e) => (JSON.parse(e.data) as { seq: number }).seq);
    expect(seqs).toEqual([...Array(EVENTS).keys()]);

    const latency = { direct: [] as number[], nginx: [] as number[], extra: [] as number[] };
    for (let seq = 0; seq < EVENTS; seq++) {
      const d = (arrivals.direct.get(seq) as number) - (sentAt[seq] as number);
      const n = (arrivals.proxied.get(seq) as number) - (sentAt[seq] as number);
      latency.direct.push(d);
      latency.nginx.push(n);
      latency.extra.push(n - d);
    }
    const figures = { direct: summary(latency.direct), nginx: summary(latency.nginx), extra: summary(latency.extra) };
    console.log(`nginx latency over ${EVENTS} events ${INTERVAL_MS} ms apart (ms): ${JSON.stringify(figures)}`);
    expect(figures.extra.p99).toBeLessThan(P99_BUDGET_MS);
  });
});
