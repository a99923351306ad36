// Redis Cluster end to end on a local 3-master/3-replica cluster the suite
// builds: classic pub/sub (a plain PUBLISH on any node reaches the streams),
// sharded pub/sub (sendEvent, POST /publish and sse-send use SPUBLISH; plain
// PUBLISH is not heard), history with hash-tagged keys resuming a stream whose
// channels live on different masters, presence across servers, and session
// reads across slots.
// Failovers: cluster-failover.test.ts.
import { createCluster } from 'redis';
import type { RedisBroker } from '../../src/brokers/redis';
import { publishWithHistory } from '../../src/brokers/redis-history';
import { createServer, type SseServer } from '../../src/cli/server';
import type { Hub } from '../../src/core/hub';
import type { HubOptions } from '../../src/core/options';
import { createHub } from '../../src/create-hub';
import { RedisClusterSetup } from '../helpers/redis-cluster';
import { describeWithTools } from '../helpers/require-tool';
import { runNode, SEND } from '../helpers/run-cli';
import { SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

jest.setTimeout(60_000);

describeWithTools(['redis-server', 'redis-cli'], 'Redis Cluster', () => {
  let cluster: RedisClusterSetup;
  let sse: SseServer | undefined;
  let publisher: Hub | undefined;
  const readers: SseReader[] = [];

  beforeAll(async () => {
    cluster = await RedisClusterSetup.start();
  });
  afterEach(async () => {
    for (const reader of readers.splice(0)) reader.close();
    await publisher?.close();
    await sse?.close();
    publisher = sse = undefined;
  });
  afterAll(async () => {
    await cluster.stop();
  });

  async function serve(options: HubOptions): Promise<string> {
    const hubOptions: HubOptions = { redisCluster: { nodes: cluster.urls }, ...options };
    sse = createServer({ hubOptions });
    const base = `http://127.0.0.1:${(await sse.listen(0)).port}`;
    publisher = createHub(hubOptions);
    await (sse.hub.broker as RedisBroker).ready(10_000);
    await (publisher.broker as RedisBroker).ready(10_000);
    return base;
  }

  async function open(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
    const reader = await SseReader.open(url, headers);
    readers.push(reader);
    return reader;
  }

  /** Sends `warm` until the stream has one: the subscription is live. */
  async function warm(reader: SseReader, channel = 'all'): Promise<void> {
    const pub = publisher as Hub;
    await waitFor(
      async () => {
        await pub.sendEvent('warm', 'x', channel);
        return reader.events.some((e) => e.event === 'warm');
      },
      { timeout: 10_000, interval: 100, what: `a live subscription on ${channel}` },
    );
  }

  /** A channel whose slot another master serves than `all`'s. */
  async function channelOnAnotherMaster(): Promise<string> {
    const allMaster = (await cluster.masterOf('all')).port;
    for (let i = 0; ; i++) {
      const candidate = `news-${i}`;
      if ((await cluster.masterOf(candidate)).port !== allMaster) return candidate;
    }
  }

  test('classic: a plain PUBLISH on any node, master or replica, reaches the stream', async () => {
    const base = await serve({});
    const reader = await open(`${base}/?channels=all`);
    await warm(reader);
    for (const server of cluster.servers) {
      await cluster.command(server.port, 'PUBLISH', 'all', JSON.stringify(['message', `from ${server.port}`]));
    }
    await waitFor(() => reader.events.filter((e) => e.data.startsWith('from ')).length === 6, {
      what: 'six plain PUBLISHes',
    });
    // sse-send against the cluster publishes classic too.
    const sent = await runNode(SEND, ['--redis-cluster', cluster.urls.slice(0, 2).join(','), 'all', 'message', 'cli']);
    expect(sent).toMatchObject({ code: 0 });
    await waitFor(() => reader.events.some((e) => e.data === 'cli'), { what: 'sse-send on the cluster' });
  });

  test('sharded: sendEvent, POST /publish and sse-send use SPUBLISH; plain PUBLISH is not heard', async () => {
    const base = await serve({ pubsub: 'sharded' });
    const reader = await open(`${base}/?channels=all`);
    await warm(reader);
    const master = await cluster.masterOf('all');
    expect(await cluster.command(master.port, 'PUBSUB', 'SHARDNUMSUB', 'all')).toMatch(/:1\r\n$/);
    for (const server of cluster.servers) {
      expect(await cluster.command(server.port, 'PUBSUB', 'NUMSUB', 'all')).toMatch(/:0\r\n$/);
      await cluster.command(server.port, 'PUBLISH', 'all', JSON.stringify(['message', 'plain']));
    }
    await (publisher as Hub).sendEvent('message', 'sendEvent', 'all');
    const posted = await fetch(`${base}/publish`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ channel: 'all', event: 'message', data: 'POST' }),
    });
    expect(posted.status).toBe(202);
    const sent = await runNode(SEND, [
      '--redis-cluster',
      cluster.urls[0] as string,
      '--pubsub',
      'sharded',
      'all',
      'message',
      'cli',
    ]);
    expect(sent).toMatchObject({ code: 0 });
    await waitFor(() => ['sendEvent', 'POST', 'cli'].every((d) => reader.events.some((e) => e.data === d)), {
      what: 'the three sharded publishes',
    });
    expect(reader.events.filter((e) => e.data === 'plain')).toHaveLength(0);
  });

  test('history: hash-tagged keys on the channel’s slot; a stream on two masters resumes with nothing lost or doubled', async () => {
    const other = await channelOnAnotherMaster();
    const base = await serve({ history: { size: 100, ttl: 600 } });
    const reader = await open(`${base}/?channels=all,${other}`);
    await warm(reader);
    await warm(reader, other);
    const pub = publisher as Hub;
    // Each channel's stream key lives on the master of its own slot.
    for (const channel of ['all', other]) {
      const master = await cluster.masterOf(channel);
      expect(await cluster.command(master.port, 'EXISTS', `sse-hub:history:{${channel}}`)).toBe(':1\r\n');
    }
    for (let i = 0; i < 10; i++) await pub.sendEvent('message', `first-${i}`, i % 2 === 0 ? 'all' : other);
    await waitFor(() => reader.events.filter((e) => e.data.startsWith('first-')).length === 10, { what: '10 events' });
    await pub.sendEvent('message', 'last', 'all');
    await waitFor(() => reader.events.some((e) => e.data === 'last'), { what: 'the last event' });
    const lastSeen = reader.events[reader.events.length - 1]?.id as string;
    reader.close();
    const missed: string[] = [];
    for (let i = 0; i < 10; i++) {
      const channel = i % 2 === 0 ? other : 'all';
      await pub.sendEvent('message', `missed-${i}`, channel);
      missed.push(`missed-${i}`);
    }
    const resumed = await open(`${base}/?channels=all,${other}`, { 'Last-Event-ID': lastSeen });
    await waitFor(() => resumed.events.filter((e) => e.data.startsWith('missed-')).length >= 10, {
      what: 'the replay',
    });
    await pub.sendEvent('message', 'live', 'all');
    await waitFor(() => resumed.events.some((e) => e.data === 'live'), { what: 'a live event after the replay' });
    const data = resumed.events.filter((e) => e.event === 'message').map((e) => e.data);
    expect(data).toEqual([...missed, 'live']);
    expect(resumed.events.filter((e) => e.event === 'gap')).toHaveLength(0);
  });

  test('ids come from the publisher’s clock, not the shards’: clocks apart cannot reorder a publisher’s events', async () => {
    const other = await channelOnAnotherMaster();
    const client = createCluster({ rootNodes: [{ url: cluster.urls[0] as string }] });
    client.on('error', () => undefined);
    await client.connect();
    const run = (args: string[], key?: string): Promise<unknown> => client.sendCommand(key, false, args);
    // A publisher clock an hour behind both shards: the ids follow it exactly,
    // alternating between the two masters, so the shards' own clocks (a second
    // or an hour apart) play no part in the order.
    const start = Date.now() - 3_600_000;
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const channel = i % 2 === 0 ? 'all' : other;
      ids.push(
        await publishWithHistory(
          run,
          'skew:',
          channel,
          { event: 'message', data: 'x' },
          { size: 10, ttl: 7200 },
          true,
          false,
          `${start + i}-0`,
        ),
      );
    }
    await client.close();
    // (The first id on each channel is `-1`: `-0` marks where its history starts.)
    expect(ids.map((id) => id.split('-')[0])).toEqual([0, 1, 2, 3, 4, 5].map((i) => String(start + i)));
    // And ids stay distinct across channels within one ms of the same publisher.
    expect(new Set(ids).size).toBe(6);
    // With no channel to read, "the last id so far" is the broker's clock, so that a
    // catch-up after an outage starts now, not at the beginning of history.
    await serve({ history: true });
    const { lastId } = await (sse?.hub.broker as RedisBroker).readHistory(new Map(), { size: 10, ttl: 60 });
    expect(Math.abs(Number(lastId.split('-')[0]) - Date.now())).toBeLessThan(60_000);
  });

  test('two publishers with clocks an hour apart on two masters: the stream resumes each channel from its own position', async () => {
    const other = await channelOnAnotherMaster();
    const base = await serve({ history: { size: 100, ttl: 7200 } });
    const reader = await open(`${base}/?channels=all,${other}`);
    await warm(reader);
    await warm(reader, other);
    const client = createCluster({ rootNodes: [{ url: cluster.urls[0] as string }] });
    client.on('error', () => undefined);
    await client.connect();
    const run = (args: string[], key?: string): Promise<unknown> => client.sendCommand(key, false, args);
    // Publisher "ahead" runs an hour fast and publishes on all; "behind" has the right time and publishes on the other channel.
    const hour = 3_600_000;
    let seq = 0;
    const publish = (channel: string, data: string, clockOffset: number): Promise<string> =>
      publishWithHistory(
        run,
        '',
        channel,
        { event: 'message', data },
        { size: 100, ttl: 7200 },
        true,
        false,
        `${Date.now() + clockOffset}-${seq++}`,
      );
    try {
      await publish('all', 'ahead-1', hour);
      await waitFor(() => reader.events.some((e) => e.data === 'ahead-1'), { what: 'ahead-1' });
      await publish(other, 'behind-1', 0);
      await waitFor(() => reader.events.some((e) => e.data === 'behind-1'), { what: 'behind-1' });
      // What a browser would send: its last id, a position on each channel (one plain id
      // cannot be right here: behind-1's id is an hour below ahead-1's).
      const lastSeen = reader.events[reader.events.length - 1]?.id as string;
      expect(lastSeen).toMatch(new RegExp(`^all=\\d+-\\d+,${other}=\\d+-\\d+$`));
      reader.close();
      await publish(other, 'behind-2', 0);
      await publish('all', 'ahead-2', hour);
      await publish(other, 'behind-3', 0);
      const resumed = await open(`${base}/?channels=all,${other}`, { 'Last-Event-ID': lastSeen });
      await waitFor(() => resumed.events.filter((e) => e.event === 'message').length >= 3, { what: 'the replay' });
      await publish('all', 'ahead-live', hour);
      await publish(other, 'behind-live', 0);
      // Two masters, two subscriber connections: the two live events may arrive in either order.
      await waitFor(() => ['ahead-live', 'behind-live'].every((d) => resumed.events.some((e) => e.data === d)), {
        what: 'live events after the replay',
      });
      const data = resumed.events.filter((e) => e.event === 'message').map((e) => e.data);
      // Each channel in its own order, each event once, nothing from before the disconnect.
      expect(data.filter((d) => d.startsWith('ahead-'))).toEqual(['ahead-2', 'ahead-live']);
      expect(data.filter((d) => d.startsWith('behind-'))).toEqual(['behind-2', 'behind-3', 'behind-live']);
      expect(resumed.events.filter((e) => e.event === 'gap')).toHaveLength(0);
      // The same stream resumed once more from its newest list: nothing again.
      const newest = resumed.events[resumed.events.length - 1]?.id as string;
      resumed.close();
      const again = await open(`${base}/?channels=all,${other}`, { 'Last-Event-ID': newest });
      await publish(other, 'behind-after', 0);
      await waitFor(() => again.events.some((e) => e.data === 'behind-after'), { what: 'the next live event' });
      expect(again.events.filter((e) => e.event === 'message').map((e) => e.data)).toEqual(['behind-after']);
    } finally {
      await client.close();
    }
  });

  test('presence: two servers on the cluster see each other’s connections (one hash-tagged slot)', async () => {
    const base = await serve({});
    const second = createServer({ hubOptions: { redisCluster: { nodes: cluster.urls } } });
    try {
      const secondBase = `http://127.0.0.1:${(await second.listen(0)).port}`;
      await (second.hub.broker as RedisBroker).ready(10_000);
      await open(`${base}/?channels=lobby,all`);
      await open(`${secondBase}/?channels=lobby`);
      await open(`${secondBase}/?channels=lobby`);
      const hub = (sse as SseServer).hub;
      await waitFor(async () => (await hub.presence('lobby')).connections === 3, { what: '3 on lobby across servers' });
      expect(await second.hub.presenceOverview()).toEqual({
        processes: 3, // the two servers, and serve()'s publishing hub (no connections)
        channels: [
          { channel: 'lobby', connections: 3, users: [] },
          { channel: 'all', connections: 1, users: [] },
        ],
      });
    } finally {
      await second.close();
    }
    // A clean close takes the second server's record with it.
    await waitFor(async () => (await (sse as SseServer).hub.presence('lobby')).connections === 1, {
      what: 'the second server to drop out',
    });
  });

  test('session reads: keys on different slots, one GET each (a multi-slot MGET would fail with CROSSSLOT)', async () => {
    await serve({});
    const writer = createCluster({ rootNodes: [{ url: cluster.urls[0] as string }] });
    writer.on('error', () => undefined);
    await writer.connect();
    const keys = ['sess:a', 'sess:b', 'sess:c', 'sess:d'];
    const slots = new Set(await Promise.all(keys.map((k) => cluster.slotOf(k))));
    expect(slots.size).toBeGreaterThan(1);
    for (const key of keys) await writer.set(key, `{"user":"${key}"}`);
    await writer.close();
    const store = (sse?.hub.broker as RedisBroker).store;
    expect(store.isReady).toBe(true);
    expect(await store.mGet([...keys, 'sess:none'])).toEqual([...keys.map((k) => `{"user":"${k}"}`), null]);
  });
});
