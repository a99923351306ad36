// Sentinel failover end to end: a master, a replica and three real
// redis-sentinel processes; an sse-hub server with 100 streams and a publisher
// hub sending 50 events/s, both on `redisSentinel`. SIGKILL the master: no
// stream is closed, /healthz goes 503 then 200 after the promotion, sendEvent
// never hangs past sendTimeout, delivery resumes by itself, and every event
// published once /healthz is 200 again arrives exactly once. With history,
// what sendEvent acknowledged is replayable afterwards (strictly so with
// redisWaitReplicas).
import { BrokerUnavailableError } from '../../src/core/errors';
import type { Hub } from '../../src/core/hub';
import type { HubOptions } from '../../src/core/options';
import { createHub } from '../../src/create-hub';
import type { RedisBroker } from '../../src/brokers/redis';
import { createServer, type SseServer } from '../../src/cli/server';
import { SentinelSetup } from '../helpers/redis-sentinel';
import { describeWithTools } from '../helpers/require-tool';
import { SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

jest.setTimeout(60_000);

const SEND_TIMEOUT = 1000;
const CLIENTS = 100;

interface Sent {
  seq: number;
  started: number;
  settled?: number;
  ok?: boolean;
  id?: string;
  error?: unknown;
}

let setup: SentinelSetup | undefined;
let sse: SseServer | undefined;
let publisher: Hub | undefined;
let readers: SseReader[] = [];
let stopLoops: (() => void)[] = [];

afterEach(async () => {
  for (const stop of stopLoops) stop();
  stopLoops = [];
  for (const reader of readers) reader.close();
  readers = [];
  await publisher?.close();
  await sse?.close();
  await setup?.stop();
  publisher = sse = setup = undefined;
});

/** Starts everything, kills the master, waits for the promotion; returns what was seen. */
async function runFailover(options: HubOptions, afterPromotion?: (s: SentinelSetup) => Promise<void>) {
  setup = await SentinelSetup.start();
  const s = setup;
  const hubOptions: HubOptions = {
    redisSentinel: { name: s.name, sentinels: s.sentinels },
    sendTimeout: SEND_TIMEOUT,
    ...options,
  };
  sse = createServer({ hubOptions });
  const base = `http://127.0.0.1:${(await sse.listen(0)).port}`;
  publisher = createHub(hubOptions);
  await (sse.hub.broker as RedisBroker).ready(10_000);
  await (publisher.broker as RedisBroker).ready(10_000);
  readers = await Promise.all(Array.from({ length: CLIENTS }, () => SseReader.open(`${base}/?channels=all`)));
  const pub = publisher;
  let warmId: string | undefined;
  await waitFor(
    async () => {
      warmId = (await pub.sendEvent('warm', 'x', 'all')).id;
      return readers.every((r) => r.events.some((e) => e.event === 'warm'));
    },
    { timeout: 10_000, interval: 100, what: 'every stream to receive' },
  );

  // /healthz, watched every 25 ms.
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
  // 50 events/s through sendEvent.
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
  stopLoops.push(stop);

  await waitFor(() => sent.filter((r) => r.ok).length >= 25, { what: '25 events before the kill' });
  const oldMaster = s.master;
  const killedAt = Date.now();
  await oldMaster.stop('SIGKILL');
  const down = await waitFor(() => health.find((h) => h.at > killedAt && h.status === 503), {
    timeout: 10_000,
    what: '/healthz 503 after the kill',
  });
  await waitFor(async () => (await s.masterPort()) === s.replica.port, { timeout: 20_000, what: 'the promotion' });
  await afterPromotion?.(s);
  const resumed = Date.now();
  const up = await waitFor(() => health.find((h) => h.at > down.at && h.status === 200), {
    timeout: 20_000,
    what: '/healthz 200 after the promotion',
  });
  const from = Math.max(up.at, resumed);
  await waitFor(() => sent.filter((r) => r.started > from).length >= 50, { what: 'a second of events after 200' });
  stop();
  await watch;
  await waitFor(() => sent.every((r) => r.settled !== undefined), {
    timeout: SEND_TIMEOUT + 2000,
    what: 'every sendEvent to settle',
  });
  const after = sent.filter((r) => r.started > from);
  // Let the last events reach every stream.
  await waitFor(
    () =>
      readers.every((r) => after.every((a) => a.error !== undefined || r.events.some((e) => e.data === String(a.seq)))),
    { timeout: 5000, what: 'the events published after 200 to arrive' },
  );
  console.info(
    `sentinel failover: /healthz 503 ${down.at - killedAt} ms after SIGKILL, 200 ${up.at - killedAt} ms after; ` +
      `${sent.filter((r) => r.error !== undefined).length} of ${sent.length} sendEvents rejected`,
  );
  return { sent, down, up, after, warmId: warmId as string, base, killedAt };
}

describeWithTools(['redis-server', 'redis-sentinel'], 'Sentinel failover (100 streams, 50 events/s)', () => {
  test('no stream closes, /healthz 503 then 200, sendEvent never hangs, delivery resumes, each later event once', async () => {
    const { sent, down, up, after } = await runFailover({});
    expect(readers.filter((r) => r.ended)).toHaveLength(0);
    expect(down.at).toBeLessThan(up.at);
    for (const record of sent) {
      expect((record.settled as number) - record.started).toBeLessThanOrEqual(SEND_TIMEOUT + 500);
      if (record.error !== undefined) expect(record.error).toBeInstanceOf(BrokerUnavailableError);
    }
    // Well inside the gap (both hubs' views of it can differ by a few ms), every send rejected.
    const inGap = sent.filter((r) => r.started > down.at + 200 && r.settled !== undefined && r.settled < up.at - 500);
    expect(inGap.length).toBeGreaterThan(0);
    for (const record of inGap) expect(record.error).toBeInstanceOf(BrokerUnavailableError);
    expect(after.length).toBeGreaterThanOrEqual(50);
    for (const record of after) expect(record.error).toBeUndefined();
    for (const reader of readers) {
      for (const record of after) {
        expect(reader.events.filter((e) => e.event === 'message' && e.data === String(record.seq))).toHaveLength(1);
      }
    }
  });

  test('history without redisWaitReplicas: later events replay; acknowledged ones lost to async replication are counted', async () => {
    const { sent, after, warmId, base } = await runFailover({ history: true });
    const replay = await SseReader.open(`${base}/?channels=all`, { 'Last-Event-ID': warmId });
    const acked = sent.filter((r) => r.id !== undefined);
    const lastAcked = acked[acked.length - 1] as Sent;
    await waitFor(() => replay.events.some((e) => e.id === lastAcked.id), { what: 'the replay' });
    replay.close();
    const replayed = new Set(replay.events.map((e) => e.id));
    for (const record of after) expect(replayed.has(record.id)).toBe(true);
    const lost = acked.filter((r) => !replayed.has(r.id));
    console.info(`history without WAIT: ${lost.length} of ${acked.length} acknowledged events lost in the failover`);
    // Nothing is replayed twice either.
    expect(replay.events.filter((e) => e.event === 'message').length).toBe(
      replayed.size - (replayed.has(undefined) ? 1 : 0),
    );
  });

  test('history with redisWaitReplicas 1: every event whose sendEvent resolved is replayable after the failover', async () => {
    const { sent, after, warmId, base } = await runFailover({ history: true, redisWaitReplicas: 1 }, async (s) => {
      // Alone, the new master has no replica: WAIT 1 refuses every event (the
      // documented trade-off) until the old master is back as its replica.
      const old = s.master;
      await old.restart();
      await waitFor(async () => /role:slave[\s\S]*master_link_status:up/.test(await s.info(old.port)), {
        timeout: 20_000,
        what: 'the old master to rejoin as a replica',
      });
    });
    const acked = sent.filter((r) => r.id !== undefined);
    const refusedForReplicas = sent.filter((r) => /replicas acknowledged/.test(String(r.error)));
    console.info(
      `history with WAIT 1: ${refusedForReplicas.length} events refused while the new master had no replica`,
    );
    // WAIT was really in force: alone, the new master could not satisfy it.
    expect(refusedForReplicas.length).toBeGreaterThan(0);
    expect(after.length).toBeGreaterThanOrEqual(50);
    for (const record of after) expect(record.error).toBeUndefined();
    const replay = await SseReader.open(`${base}/?channels=all`, { 'Last-Event-ID': warmId });
    const lastAcked = acked[acked.length - 1] as Sent;
    await waitFor(() => replay.events.some((e) => e.id === lastAcked.id), { what: 'the replay' });
    replay.close();
    const replayed = new Set(replay.events.map((e) => e.id));
    expect(acked.filter((r) => !replayed.has(r.id)).map((r) => r.seq)).toEqual([]);
  });
});
