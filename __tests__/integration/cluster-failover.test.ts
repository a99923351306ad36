// Redis Cluster failover end to end: a local 3-master/3-replica cluster, an
// sse-hub server with 100 streams on `all` and 50 events/s through its
// sendEvent; SIGKILL the master that owns `all`'s slot. In classic and sharded
// mode: no stream closes, /healthz 503 then 200 after the replica takes over,
// sendEvent never hangs, and every event published once /healthz is 200 again
// arrives once. With history, later events replay after the failover; with
// redisWaitReplicas 1, every event whose sendEvent resolved does.
import { BrokerUnavailableError } from '../../src/core/errors';
import type { HubOptions } from '../../src/core/options';
import { expectAcknowledgedReplayable, FailoverRun, SEND_TIMEOUT } from '../helpers/failover';
import { RedisClusterSetup } from '../helpers/redis-cluster';
import type { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

jest.setTimeout(60_000);

describeWithTools(['redis-server', 'redis-cli'], 'Redis Cluster failover (100 streams, 50 events/s)', () => {
  let cluster: RedisClusterSetup | undefined;
  let failover: FailoverRun | undefined;
  afterEach(async () => {
    await failover?.close();
    await cluster?.stop();
    failover = cluster = undefined;
  });

  async function run(
    c: RedisClusterSetup,
    options: HubOptions,
    afterPromotion?: (victim: RedisServer) => Promise<void>,
    settle = 0,
  ) {
    const victim = await c.masterOf('all');
    failover = new FailoverRun();
    return failover.run({
      hubOptions: { redisCluster: { nodes: c.urls }, ...options },
      kill: () => victim.stop('SIGKILL'),
      promoted: async () => {
        // While the slot has no master at all, masterOf is undefined: that is not a promotion yet.
        await waitFor(async () => ![undefined, victim.port].includes((await c.masterOf('all'))?.port), {
          timeout: 20_000,
          what: 'a replica to take over all’s slot',
        });
      },
      afterPromotion: afterPromotion === undefined ? undefined : () => afterPromotion(victim),
      settle,
    });
  }

  test('history: events published after the failover replay, each once', async () => {
    const c = (cluster = await RedisClusterSetup.start());
    const { sent, after, warmId, base } = await run(c, { history: true });
    const replay = await SseReader.open(`${base}/?channels=all`, { 'Last-Event-ID': warmId });
    const last = after[after.length - 1];
    await waitFor(() => replay.events.some((e) => e.id === last?.id), { what: 'the replay' });
    replay.close();
    const replayed = replay.events.filter((e) => e.event === 'message').map((e) => e.id);
    expect(new Set(replayed).size).toBe(replayed.length);
    for (const record of after) expect(replayed).toContain(record.id);
    const acked = sent.filter((r) => r.id !== undefined);
    console.info(
      `cluster history without WAIT: ${acked.filter((r) => !replayed.includes(r.id)).length} of ${acked.length} acknowledged events lost in the failover`,
    );
  });

  test('history with redisWaitReplicas 1: every event whose sendEvent resolved is replayable after the failover', async () => {
    const c = (cluster = await RedisClusterSetup.start());
    const result = await run(
      c,
      { history: true, redisWaitReplicas: 1 },
      async (victim) => {
        // Alone, the promoted replica has no replica of its own: WAIT 1 refuses
        // every event on its slot until the old master, restarted with its
        // nodes.conf, rejoins the cluster as the new master's replica.
        await victim.restart();
        await waitFor(
          async () =>
            /role:slave[\s\S]*master_link_status:up/.test(await c.command(victim.port, 'INFO', 'replication')),
          {
            timeout: 30_000,
            what: 'the old master to rejoin as a replica',
          },
        );
      },
      // A WAIT begun just before the replica came back can still run out (up to
      // sendTimeout), and then the broker refuses at once for 1 s more.
      SEND_TIMEOUT + 1500,
    );
    await expectAcknowledgedReplayable('cluster history with WAIT 1', result);
  });

  test.each(['classic', 'sharded'] as const)(
    '%s pub/sub: kill the master owning `all`: no stream closes, 503 then 200, no hang, each later event once',
    async (pubsub) => {
      const c = (cluster = await RedisClusterSetup.start());
      const { sent, down, up, after } = await run(c, { pubsub });
      const readers = (failover as FailoverRun).readers;
      expect(readers.filter((r) => r.ended)).toHaveLength(0);
      expect(down.at).toBeLessThan(up.at);
      for (const record of sent) {
        // sendTimeout plus the event-loop lag of a loaded machine; a hang would be unbounded.
        expect((record.settled as number) - record.started).toBeLessThanOrEqual(2 * SEND_TIMEOUT);
        if (record.error !== undefined) expect(record.error).toBeInstanceOf(BrokerUnavailableError);
      }
      expect(after.length).toBeGreaterThanOrEqual(50);
      for (const record of after) expect(record.error).toBeUndefined();
      for (const reader of readers) {
        for (const record of after) {
          expect(reader.events.filter((e) => e.event === 'message' && e.data === String(record.seq))).toHaveLength(1);
        }
      }
    },
  );
});
