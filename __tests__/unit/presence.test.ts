// core/presence.ts and core/presence-events.ts through the hub, on the
// memory broker with fake responses (no sockets): counts and users summed
// over every hub sharing the broker, back to zero when everyone leaves; the
// admin tail (an observer) is not counted; presence events join once and
// leave once per user, whatever the tabs, hubs or flapping reconnects.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MemoryBroker } from '../../src/brokers/memory';
import { ChannelNameError, OptionError } from '../../src/core/errors';
import { Hub } from '../../src/core/hub';
import { resolveHubOptions, type HubOptions } from '../../src/core/options';
import { presencePattern } from '../../src/core/presence-events';
import { FakeResponse } from '../helpers/fake-response';
import { waitFor } from '../helpers/wait-for';

const fakeReq = (): IncomingMessage =>
  ({ httpVersionMajor: 1, httpVersionMinor: 1, socket: { destroyed: false } }) as unknown as IncomingMessage;

let hubs: Hub[] = [];
function makeHub(broker: MemoryBroker, options: HubOptions = {}): Hub {
  const hub = new Hub(broker, resolveHubOptions({ ...options, broker }, {}));
  hubs.push(hub);
  return hub;
}
function open(hub: Hub, channels: string[], user?: string, observer = false): FakeResponse {
  const res = new FakeResponse();
  hub.attach(fakeReq(), res as unknown as ServerResponse, channels, { user, observer });
  return res;
}
/** The presence events a response received, parsed. */
function presenceEvents(res: FakeResponse): { action: string; user: string; count: number }[] {
  return [...res.text().matchAll(/event: presence\ndata: (.*)\n/g)].map((m) => JSON.parse(m[1] as string));
}

afterEach(async () => {
  await Promise.all(hubs.map((h) => h.close()));
  hubs = [];
});

describe('presence', () => {
  test('hub.presence() counts connections and distinct users across every hub sharing the broker', async () => {
    const broker = new MemoryBroker();
    const a = makeHub(broker);
    const b = makeHub(broker);
    open(a, ['lobby', 'all'], 'bob');
    open(a, ['lobby'], 'bob');
    open(b, ['lobby'], 'alice');
    open(b, ['lobby']); // query mode: counted, no user
    expect(await a.presence('lobby')).toEqual({ connections: 4, users: ['alice', 'bob'] });
    expect(await b.presence('lobby')).toEqual({ connections: 4, users: ['alice', 'bob'] });
    expect(await a.presence('nobody-here')).toEqual({ connections: 0, users: [] });
    expect(await b.channels()).toEqual([
      { channel: 'lobby', connections: 4, users: ['alice', 'bob'] },
      { channel: 'all', connections: 1, users: ['bob'] },
    ]);
    expect((await a.presenceOverview()).processes).toBe(2);
  });

  test('counts return to zero when everyone leaves', async () => {
    const broker = new MemoryBroker();
    const hub = makeHub(broker);
    const tabs = [open(hub, ['lobby'], 'bob'), open(hub, ['lobby', 'x'], 'bob'), open(hub, ['x'])];
    expect(await hub.presence('x')).toEqual({ connections: 2, users: ['bob'] });
    for (const res of tabs) res.destroy();
    expect(await hub.channels()).toEqual([]);
    expect(await hub.presence('lobby')).toEqual({ connections: 0, users: [] });
  });

  test("the admin dashboard's tail (an observer) receives events but is not counted", async () => {
    const broker = new MemoryBroker();
    const hub = makeHub(broker);
    const tail = open(hub, ['orders'], undefined, true);
    expect(await hub.channels()).toEqual([]);
    await hub.sendEvent('message', 'hi', 'orders');
    await waitFor(() => tail.text().includes('data: hi'));
  });

  test('a bad channel name is a ChannelNameError', async () => {
    const hub = makeHub(new MemoryBroker());
    await expect(hub.presence('no spaces')).rejects.toBeInstanceOf(ChannelNameError);
  });
});

describe('presence events', () => {
  const options: HubOptions = { presenceChannels: ['lobby', 'team-*'], presenceDebounce: 80 };

  test('three tabs of one user join once and leave once, with the user and the count', async () => {
    const hub = makeHub(new MemoryBroker(), options);
    const watcher = open(hub, ['lobby'], 'alice');
    await waitFor(() => presenceEvents(watcher).length === 1, { what: "alice's join" });
    const tabs = [open(hub, ['lobby'], 'bob'), open(hub, ['lobby'], 'bob'), open(hub, ['lobby'], 'bob')];
    await waitFor(() => presenceEvents(watcher).length === 2, { what: "bob's join" });
    tabs[0]?.destroy();
    tabs[1]?.destroy();
    tabs[2]?.destroy();
    await waitFor(() => presenceEvents(watcher).length === 3, { what: "bob's leave" });
    // A further wait past the debounce: still nothing more.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(presenceEvents(watcher)).toEqual([
      { action: 'join', user: 'alice', count: 1 },
      { action: 'join', user: 'bob', count: 2 },
      { action: 'leave', user: 'bob', count: 1 },
    ]);
  });

  test('a reconnect within the debounce sends neither a leave nor a second join', async () => {
    const hub = makeHub(new MemoryBroker(), { ...options, presenceDebounce: 300 });
    const watcher = open(hub, ['team-red'], 'alice');
    open(hub, ['team-red'], 'bob');
    const flapping = open(hub, ['team-red'], 'carol');
    await waitFor(() => presenceEvents(watcher).length === 3, { what: 'three joins' });
    for (let i = 0; i < 3; i++) {
      flapping.destroy();
      open(hub, ['team-red'], 'carol');
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(presenceEvents(watcher).map((e) => `${e.action} ${e.user}`)).toEqual([
      'join alice',
      'join bob',
      'join carol',
    ]);
  });

  test('a user on two hubs sharing the broker is announced once, and leaves only when gone from both', async () => {
    // One memory broker delivers each channel to one hub only, so the events
    // are read where they are published.
    const broker = new MemoryBroker();
    const published: string[] = [];
    const publish = broker.publish.bind(broker);
    broker.publish = (channel, event) => {
      if (event.event === 'presence') published.push(event.data);
      return publish(channel, event);
    };
    const a = makeHub(broker, options);
    const b = makeHub(broker, options);
    const onA = open(a, ['lobby'], 'bob');
    await waitFor(() => published.length === 1);
    const onB = open(b, ['lobby'], 'bob');
    onA.destroy();
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(published).toHaveLength(1);
    onB.destroy();
    await waitFor(() => published.length === 2);
    expect(published.map((data) => JSON.parse(data))).toEqual([
      { action: 'join', user: 'bob', count: 1 },
      { action: 'leave', user: 'bob', count: 0 },
    ]);
  });

  test('channels that match no pattern, and connections without a user, send no presence events', async () => {
    const hub = makeHub(new MemoryBroker(), options);
    const watcher = open(hub, ['other', 'lobby']);
    open(hub, ['other'], 'bob');
    open(hub, ['lobby']);
    await hub.sendEvent('message', 'marker', 'lobby');
    await waitFor(() => watcher.text().includes('data: marker'));
    expect(presenceEvents(watcher)).toEqual([]);
  });

  test('patterns: * matches any run of channel-name characters, nothing else', () => {
    const pattern = presencePattern(['lobby', 'team-*', 'a.b']);
    expect(['lobby', 'team-', 'team-red', 'team-a:b', 'a.b'].every((c) => pattern.test(c))).toBe(true);
    expect(['lobby2', 'xteam-red', 'aXb', 'team'].some((c) => pattern.test(c))).toBe(false);
  });

  test('presenceChannels, presenceDebounce and presenceTtl are validated when the hub is created', () => {
    expect(() => resolveHubOptions({ presenceChannels: ['no spaces'] }, {})).toThrow(OptionError);
    expect(() => resolveHubOptions({ presenceChannels: 'lobby' as unknown as string[] }, {})).toThrow(
      /presenceChannels must be a list/,
    );
    expect(() => resolveHubOptions({ presenceDebounce: -1 }, {})).toThrow(/presenceDebounce/);
    expect(() => resolveHubOptions({ presenceTtl: 2 }, {})).toThrow(/at least 3 seconds/);
    expect(resolveHubOptions({}, {})).toMatchObject({ presenceChannels: [], presenceDebounce: 2000, presenceTtl: 15 });
  });
});
