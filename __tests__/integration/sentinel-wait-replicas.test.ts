// Sentinel failover with redisWaitReplicas (its own suite, so each stays well
// under a minute): a master, a replica, three sentinels, 100 streams, 50
// events/s with history; SIGKILL the master. Every event whose sendEvent
// resolved is replayable afterwards; while the promoted master has no replica
// every write is refused (and counted), until the old master rejoins.
import type { RedisBroker } from '../../src/brokers/redis';
import type { HubOptions } from '../../src/core/options';
import { expectAcknowledgedReplayable, FailoverRun, SEND_TIMEOUT } from '../helpers/failover';
import { SentinelSetup } from '../helpers/redis-sentinel';
import { describeWithTools } from '../helpers/require-tool';
import { waitFor } from '../helpers/wait-for';

jest.setTimeout(60_000);

let setup: SentinelSetup | undefined;
let failover: FailoverRun | undefined;

afterEach(async () => {
  await failover?.close();
  await setup?.stop();
  failover = setup = undefined;
});

/** A fresh Sentinel set-up whose master is SIGKILLed mid-stream. */
async function runFailover(options: HubOptions, afterPromotion?: (s: SentinelSetup) => Promise<void>, settle = 0) {
  setup = await SentinelSetup.start();
  failover = new FailoverRun();
  const result = await failover.run(setup.failoverScenario(options, afterPromotion, settle));
  return result;
}

describeWithTools(
  ['redis-server', 'redis-sentinel'],
  'Sentinel failover with redisWaitReplicas (100 streams, 50 events/s)',
  () => {
    test('history with redisWaitReplicas 1: every event whose sendEvent resolved is replayable after the failover', async () => {
      const result = await runFailover(
        { history: true, redisWaitReplicas: 1 },
        async (s) => {
          // Alone, the new master has no replica: WAIT 1 refuses every event (the
          // documented trade-off) until the old master is back as its replica.
          const old = s.master;
          await old.restart();
          // The operator's step, so the test does not wait on the sentinels'
          // 10 s INFO period to notice the old master and reconfigure it (they
          // would send the same REPLICAOF).
          await s.ask(old.port, 'REPLICAOF', '127.0.0.1', String(s.replica.port));
          await waitFor(async () => /role:slave[\s\S]*master_link_status:up/.test(await s.info(old.port)), {
            timeout: 30_000,
            what: 'the old master to rejoin as a replica',
          });
        },
        // A WAIT begun just before the replica came back can still run out (up to
        // sendTimeout), and then the broker refuses at once for 1 s more.
        SEND_TIMEOUT + 1500,
      );
      const refusedForReplicas = await expectAcknowledgedReplayable('history with WAIT 1', result);
      // …and counted (sse_hub_replica_waits_failed_total in /metrics); the count can be
      // higher, as a caller whose sendTimeout fired first saw that error instead.
      expect((failover?.publisher?.broker as RedisBroker).counters.replicaWaitsFailed).toBeGreaterThanOrEqual(
        refusedForReplicas.length,
      );
    });
  },
);
