// One failover scenario for the Sentinel and Cluster suites: an sse-hub
// server with 100 streams on channel `all`, its own hub's sendEvent called 50
// times a second (so /healthz speaks for the very process that publishes),
// /healthz watched every 25 ms; `kill` takes the
// master down and `promoted` says when Redis has a new one. Returns what
// every sendEvent did and when /healthz went down and up again.
import type { Hub } from '../../src/core/hub';
import type { HubOptions } from '../../src/core/options';
import type { RedisBroker } from '../../src/brokers/redis';
import { createServer, type SseServer } from '../../src/cli/server';
import { SseReader } from './sse-reader';
import { waitFor } from './wait-for';

// Generous for a loaded CI machine: failing fast in the gap does not wait for it.
export const SEND_TIMEOUT = 2000;
const CLIENTS = 100;

export interface Sent {
  seq: number;
  started: number;
  settled?: number;
  ok?: boolean;
  id?: string;
  error?: unknown;
}

export interface FailoverScenario {
  hubOptions: HubOptions;
  kill(): Promise<void>;
  /** Resolves once Redis has promoted a new master. */
  promoted(): Promise<void>;
  /** Runs after the promotion, before events must flow again (e.g. bring a replica back). */
  afterPromotion?(): Promise<void>;
  /** Extra ms after afterPromotion before every event must succeed again. */
  settle?: number;
}

export class FailoverRun {
  sse: SseServer | undefined;
  publisher: Hub | undefined;
  readers: SseReader[] = [];
  base = '';
  private stops: (() => void)[] = [];

  async close(): Promise<void> {
    for (const stop of this.stops) stop();
    for (const reader of this.readers) reader.close();
    await this.sse?.close();
  }

  async run(scenario: FailoverScenario) {
    const hubOptions: HubOptions = { sendTimeout: SEND_TIMEOUT, ...scenario.hubOptions };
    this.sse = createServer({ hubOptions });
    const base = `http://127.0.0.1:${(await this.sse.listen(0)).port}`;
    this.base = base;
    this.publisher = this.sse.hub;
    await (this.sse.hub.broker as RedisBroker).ready(10_000);
    const readers = await Promise.all(Array.from({ length: CLIENTS }, () => SseReader.open(`${base}/?channels=all`)));
    this.readers = readers;
    const pub = this.publisher;
    let warmId: string | undefined;
    await waitFor(
      async () => {
        warmId = (await pub.sendEvent('warm', 'x', 'all')).id;
        return readers.every((r) => r.events.some((e) => e.event === 'warm'));
      },
      { timeout: 10_000, interval: 100, what: 'every stream to receive' },
    );

    const health: { at: number; status: number }[] = [];
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const status = await fetch(`${base}/healthz`)
          .then((r) => r.status)
          .catch(() => 0);
        health.push({ at: Date.now(), status });
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();
    const sent: Sent[] = [];
    let seq = 0;
    const timer = setInterval(() => {
      const record: Sent = { seq: ++seq, started: Date.now() };
      sent.push(record);
      pub.sendEvent('message', String(record.seq), 'all').then(
        (result) => Object.assign(record, { settled: Date.now(), ok: true, id: result.id }),
        (error: unknown) => Object.assign(record, { settled: Date.now(), error }),
      );
    }, 20);
    const stop = (): void => {
      clearInterval(timer);
      watching = false;
    };
    this.stops.push(stop);

    await waitFor(() => sent.filter((r) => r.ok).length >= 25, { what: '25 events before the kill' });
    const killedAt = Date.now();
    await scenario.kill();
    const down = await waitFor(() => health.find((h) => h.at > killedAt && h.status === 503), {
      timeout: 10_000,
      what: '/healthz 503 after the kill',
    });
    await scenario.promoted();
    await scenario.afterPromotion?.();
    const resumed = Date.now();
    const up = await waitFor(() => health.find((h) => h.at > down.at && h.status === 200), {
      timeout: 20_000,
      what: '/healthz 200 after the promotion',
    });
    const from = Math.max(up.at, resumed + (scenario.settle ?? 0));
    await waitFor(() => sent.filter((r) => r.started > from).length >= 50, { what: 'a second of events after 200' });
    stop();
    await watch;
    await waitFor(() => sent.every((r) => r.settled !== undefined), {
      timeout: SEND_TIMEOUT + 2000,
      what: 'every sendEvent to settle',
    });
    const after = sent.filter((r) => r.started > from);
    await waitFor(
      () =>
        readers.every((r) =>
          after.every((a) => a.error !== undefined || r.events.some((e) => e.data === String(a.seq))),
        ),
      { timeout: 5000, what: 'the events published after 200 to arrive' },
    );
    console.info(
      `failover: /healthz 503 ${down.at - killedAt} ms after SIGKILL, 200 ${up.at - killedAt} ms after; ` +
        `${sent.filter((r) => r.error !== undefined).length} of ${sent.length} sendEvents rejected`,
    );
    return { sent, down, up, after, warmId: warmId as string, base, killedAt };
  }
}

/**
 * The checks of a failover with redisWaitReplicas: WAIT refused events while
 * the new master had no replica (it was really in force), everything after
 * /healthz 200 succeeded, and every event whose sendEvent resolved replays
 * once from before the failover. Returns the refusals for the log.
 */
export async function expectAcknowledgedReplayable(
  label: string,
  result: { sent: Sent[]; after: Sent[]; warmId: string; base: string },
): Promise<Sent[]> {
  const { sent, after, warmId, base } = result;
  const acked = sent.filter((r) => r.id !== undefined);
  const refusedForReplicas = sent.filter((r) => /replicas acknowledged/.test(String(r.error)));
  console.info(`${label}: ${refusedForReplicas.length} events refused while the new master had no replica`);
  // WAIT was really in force: alone, the new master could not satisfy it.
  expect(refusedForReplicas.length).toBeGreaterThan(0);
  expect(after.length).toBeGreaterThanOrEqual(50);
  for (const record of after) expect(record.error).toBeUndefined();
  const replay = await SseReader.open(`${base}/?channels=all`, { 'Last-Event-ID': warmId });
  const lastAcked = acked[acked.length - 1] as Sent;
  await waitFor(() => replay.events.some((e) => e.id === lastAcked.id), { what: 'the replay' });
  replay.close();
  const replayed = replay.events.filter((e) => e.event === 'message').map((e) => e.id);
  expect(new Set(replayed).size).toBe(replayed.length);
  expect(acked.filter((r) => !replayed.includes(r.id)).map((r) => r.seq)).toEqual([]);
  return refusedForReplicas;
}
