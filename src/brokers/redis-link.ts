// How RedisBroker reaches Redis: one Redis (a client and a duplicate() for
// SUBSCRIBE), a Sentinel-managed master (node-redis createSentinel) or a Redis
// Cluster (node-redis createCluster, classic or sharded pub/sub). Invariant:
// failover is node-redis's own; this file only says whether the link is up
// (both commands and the subscription, so /healthz never says 200 while a
// publish would fail) and routes each command to the node holding its key.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { createClient, createCluster, createSentinel } from 'redis';
import { silentLogger, type Logger } from '../core/logger.js';
import type { RedisClusterOptions, RedisSentinelOptions } from '../core/options.js';

interface NodeRedis {
  createClient: typeof createClient;
  createSentinel: typeof createSentinel;
  createCluster: typeof createCluster;
}

/**
 * node-redis, required when the first link is made, never by `import
 * 'sse-hub'`: an app on the memory broker does not load it. `__dirname`
 * exists in both builds (ESM maps it to import.meta.dirname).
 */
function loadRedis(): NodeRedis {
  return createRequire(join(__dirname, 'redis-link.js'))('redis') as NodeRedis;
}

/** A Sentinel-managed master: node-redis finds it through the sentinels and follows failovers. */
export type RedisSentinelConfig = RedisSentinelOptions;

/**
 * Redis Cluster: node-redis learns the slots from the seed nodes and follows
 * failovers. `pubsub` — `classic`: SUBSCRIBE/PUBLISH, a plain PUBLISH on any
 * node reaches every subscriber (django_sse publishers keep working), but
 * every node carries every message; `sharded`: SSUBSCRIBE/SPUBLISH, each
 * message travels only within its channel's shard. Defaults to `classic`.
 */
export interface RedisClusterConfig extends RedisClusterOptions {
  pubsub?: 'classic' | 'sharded';
}

export type RedisTopology =
  | { kind: 'single'; url: string }
  | { kind: 'sentinel'; sentinel: RedisSentinelConfig }
  | { kind: 'cluster'; cluster: RedisClusterConfig };

export type PubSubListener = (message: string) => void;

/** What RedisBroker, history and session reads need from Redis, whatever the topology. */
export interface RedisLink {
  readonly kind: RedisTopology['kind'];
  /** Sharded pub/sub (SPUBLISH/SSUBSCRIBE) on a cluster. */
  readonly sharded: boolean;
  /** Commands can be sent now (the master, or every master, is connected). */
  readonly commandsReady: boolean;
  /** Commands can be sent and the subscription connection(s) are up. */
  readonly ready: boolean;
  /** Sends one command; `key` routes it to its slot's master on a cluster. */
  run(args: string[], key?: string): Promise<unknown>;
  publish(channel: string, message: string): Promise<unknown>;
  subscribe(channel: string, listener: PubSubListener): Promise<void>;
  unsubscribe(channel: string, listener: PubSubListener): Promise<void>;
  /** Values of `keys` (null when missing); never one multi-slot command on a cluster. */
  mGet(keys: string[]): Promise<readonly unknown[]>;
  /** Calls `listener` whenever `ready` may have changed, and on each (re)connection of the subscriber. */
  onChange(listener: (event: 'state' | 'subscriber-ready') => void): void;
  close(): Promise<void>;
}

export interface RedisLinkOptions {
  logger?: Logger;
  /** Longest wait between reconnect attempts, in ms. */
  maxReconnectDelay: number;
}

/** Parses `host:port` (IPv6 in brackets: `[::1]:26379`). */
export function parseHostPort(value: string): { host: string; port: number } {
  const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(value.trim());
  const port = Number(match?.[2]);
  if (match === null || !(port > 0 && port < 65536)) {
    throw new TypeError(`expected host:port, got ${JSON.stringify(value)}`);
  }
  return { host: match[1] as string, port };
}

export function createRedisLink(topology: RedisTopology, options: RedisLinkOptions): RedisLink {
  const logger = options.logger ?? silentLogger;
  // Exponential backoff with jitter, capped, forever: the hub must come back
  // by itself when Redis does (docs/deployment.md, "what happens on failure").
  const reconnectStrategy = (retries: number): number =>
    Math.min(50 * 2 ** Math.min(retries, 10), options.maxReconnectDelay) + Math.floor(Math.random() * 50);
  if (topology.kind === 'single') return singleLink(topology.url, reconnectStrategy, logger);
  if (topology.kind === 'sentinel') return sentinelLink(topology.sentinel, reconnectStrategy, logger);
  return clusterLink(topology.cluster, reconnectStrategy, logger);
}

type Listeners = Set<(event: 'state' | 'subscriber-ready') => void>;
const notify = (listeners: Listeners, event: 'state' | 'subscriber-ready'): void => {
  for (const listener of listeners) listener(event);
};

function singleLink(url: string, reconnectStrategy: (retries: number) => number, logger: Logger): RedisLink {
  const client = loadRedis().createClient({
    url,
    // A command must fail at once while Redis is away, never wait in the
    // offline queue to be sent after the caller was told it failed.
    disableOfflineQueue: true,
    socket: { connectTimeout: 5000, reconnectStrategy },
  });
  // The subscriber keeps the offline queue: a SUBSCRIBE made while Redis is
  // down is sent once it is back (a stream opened then starts receiving).
  const subscriber = client.duplicate({ disableOfflineQueue: false });
  const listeners: Listeners = new Set();
  // Without 'error' listeners node-redis errors would kill the process.
  client.on('error', (err: unknown) => logger.debug('redis publisher error', { error: String(err) }));
  subscriber.on('error', (err: unknown) => logger.debug('redis subscriber error', { error: String(err) }));
  subscriber.on('ready', () => notify(listeners, 'subscriber-ready'));
  for (const c of [client, subscriber]) {
    for (const event of ['ready', 'end', 'reconnecting', 'error'] as const)
      c.on(event, () => notify(listeners, 'state'));
  }
  for (const [c, role] of [
    [client, 'publisher'],
    [subscriber, 'subscriber'],
  ] as const) {
    c.connect().catch((err: unknown) => logger.warn(`redis ${role} could not connect`, { error: String(err) }));
  }
  return {
    kind: 'single',
    sharded: false,
    get commandsReady() {
      return client.isReady;
    },
    get ready() {
      return client.isReady && subscriber.isReady;
    },
    run: (args) => client.sendCommand(args),
    publish: (channel, message) => client.publish(channel, message),
    subscribe: (channel, listener) => subscriber.subscribe(channel, listener),
    unsubscribe: (channel, listener) => subscriber.unsubscribe(channel, listener),
    mGet: (keys) => client.mGet(keys),
    onChange: (listener) => void listeners.add(listener),
    close: async () => {
      await Promise.all([closeClient(client), closeClient(subscriber)]);
    },
  };
}

interface NodeClient {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  close(): Promise<unknown>;
  destroy(): unknown;
}

async function closeClient(client: NodeClient): Promise<void> {
  if (!client.isOpen) return;
  try {
    await (client.isReady ? client.close() : client.destroy());
  } catch {
    client.destroy();
  }
}

/** How often an HA link re-reads its nodes' state, in ms (node-redis has no single "all up" event). */
const HEALTH_POLL = 100;
/** Hash slots of a Redis Cluster. */
const SLOTS = 16384;
/** Longest a health-check PING may take before the master counts as down, in ms. */
const PING_TIMEOUT = 1000;

function sentinelLink(
  config: RedisSentinelConfig,
  reconnectStrategy: (retries: number) => number,
  logger: Logger,
): RedisLink {
  const socket = { connectTimeout: 5000, reconnectStrategy, ...(config.tls ? { tls: true as const } : {}) };
  const sentinel = loadRedis().createSentinel({
    name: config.name,
    sentinelRootNodes: config.sentinels.map((s) => (typeof s === 'string' ? parseHostPort(s) : s)),
    nodeClientOptions: { username: config.username, password: config.password, socket },
    sentinelClientOptions: {
      username: config.sentinelUsername,
      password: config.sentinelPassword,
      socket: { connectTimeout: 5000, ...(config.tls ? { tls: true as const } : {}) },
    },
    // One master connection: WAIT (redisWaitReplicas) counts the writes of
    // the connection it runs on, so the write and its WAIT must share it.
    masterPoolSize: 1,
    // Re-ask the sentinels now and then, in case a switch-master message was missed.
    scanInterval: 5000,
  });
  const listeners: Listeners = new Set();
  // The master is up until its connection fails, and up again once a command
  // reaches it (the same master back, or a promoted replica).
  let masterUp = false;
  let everUp = false;
  let probing = false;
  let closed = false;
  let lastReady = false;
  const recompute = (): void => {
    const ready = !closed && sentinel.isReady && masterUp;
    if (ready !== lastReady) {
      lastReady = ready;
      if (ready) notify(listeners, 'subscriber-ready');
      notify(listeners, 'state');
    }
  };
  // node-redis reports a lost master or pub/sub connection only as an 'error'
  // of the sentinel object (its pool clients are internal): any error marks
  // the master down until a PING gets through again — within milliseconds
  // when the error was elsewhere (a sentinel), after the promotion otherwise.
  const suspect = (why: string, detail: unknown): void => {
    logger.debug(`redis sentinel ${why}`, { error: String(detail) });
    if (masterUp) {
      masterUp = false;
      recompute();
    }
    probe();
  };
  sentinel.on('error', (err: unknown) => suspect('error', err));
  sentinel.on('client-error', (event: { type?: string; error?: unknown }) =>
    suspect(`${event.type} error`, event.error),
  );
  sentinel.on('topology-change', (event: { type?: string; node?: { host: string; port: number } }) => {
    if (event.type !== 'MASTER_CHANGE') return;
    if (everUp) logger.info(`redis sentinel: new master ${event.node?.host}:${event.node?.port}`);
    suspect('master change', event.type);
  });
  for (const event of ['ready', 'end', 'reconnecting'] as const) sentinel.on(event, recompute);
  // While the master is down, one PING at a time asks node-redis to get
  // through to a master; its answer marks the new (or returned) master up.
  const probe = (): void => {
    if (probing || masterUp || closed || !sentinel.isReady) return;
    probing = true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('PING timed out')), PING_TIMEOUT);
    });
    Promise.race([sentinel.sendCommand(false, ['PING']), timeout])
      .then(() => {
        masterUp = everUp = true;
      })
      .catch(() => undefined)
      .finally(() => {
        clearTimeout(timer);
        probing = false;
        recompute();
      });
  };
  const poll = setInterval(() => {
    probe();
    recompute();
  }, HEALTH_POLL);
  poll.unref();
  sentinel
    .connect()
    .then(() => {
      masterUp = everUp = true;
      recompute();
    })
    .catch((err: unknown) => logger.warn('redis sentinel could not connect', { error: String(err) }));
  return {
    kind: 'sentinel',
    sharded: false,
    get commandsReady() {
      return lastReady;
    },
    get ready() {
      return lastReady;
    },
    run: (args) => sentinel.sendCommand(false, args),
    publish: (channel, message) => sentinel.publish(channel, message),
    subscribe: async (channel, listener) => void (await sentinel.subscribe(channel, listener)),
    unsubscribe: async (channel, listener) =>
      void (await sentinel.unsubscribe(channel, listener as (message: string | Buffer) => void)),
    mGet: (keys) => sentinel.mGet(keys),
    onChange: (listener) => void listeners.add(listener),
    close: async () => {
      closed = true;
      clearInterval(poll);
      recompute();
      await sentinel.close().catch(() => sentinel.destroy());
    },
  };
}

function clusterLink(
  config: RedisClusterConfig,
  reconnectStrategy: (retries: number) => number,
  logger: Logger,
): RedisLink {
  const sharded = config.pubsub === 'sharded';
  const cluster = loadRedis().createCluster({
    rootNodes: config.nodes.map((url) => ({ url })),
    defaults: {
      username: config.username,
      password: config.password,
      socket: { connectTimeout: 5000, reconnectStrategy },
    },
  });
  const listeners: Listeners = new Set();
  let closed = false;
  let lastReady = false;
  let lastCommands = false;
  let subscribed = 0;
  // Every master connected (each slot has somewhere to write), and the
  // pub/sub connection(s) too: the one classic SUBSCRIBE node, or each
  // master's sharded pub/sub client that holds subscriptions.
  const recompute = (): void => {
    const masters = cluster.masters;
    const commands =
      !closed && cluster.isReady && masters.length > 0 && masters.every((m) => m.client?.isReady) && allSlotsServed();
    let subscriber = true;
    if (subscribed > 0) {
      if (sharded) subscriber = masters.every((m) => m.pubSub === undefined || m.pubSub.client.isReady);
      else subscriber = cluster.pubSubNode?.client.isReady ?? false;
    }
    const ready = commands && subscriber;
    if (ready !== lastReady || commands !== lastCommands) {
      const wasReady = lastReady;
      lastReady = ready;
      lastCommands = commands;
      if (ready && !wasReady) notify(listeners, 'subscriber-ready');
      notify(listeners, 'state');
    }
  };
  // While a dead master's slots wait for its replica, a rediscovery can leave
  // them without any master; every remaining master being up is then not
  // enough: every slot must have a connected master.
  const allSlotsServed = (): boolean => {
    const slots = cluster.slots;
    if (slots.length < SLOTS) return false;
    let last: unknown;
    for (let i = 0; i < SLOTS; i++) {
      const master = slots[i]?.master;
      if (master === last) continue;
      if (master?.client?.isReady !== true) return false;
      last = master;
    }
    return true;
  };
  cluster.on('error', (err: unknown) => logger.debug('redis cluster error', { error: String(err) }));
  cluster.on('node-error', (err: unknown) => logger.debug('redis cluster node error', { error: String(err) }));
  for (const event of ['node-ready', 'node-disconnect', 'node-reconnecting', 'connect', 'disconnect'])
    cluster.on(event, recompute);
  const poll = setInterval(recompute, HEALTH_POLL);
  poll.unref();
  cluster
    .connect()
    .then(recompute)
    .catch((err: unknown) => logger.warn('redis cluster could not connect', { error: String(err) }));
  return {
    kind: 'cluster',
    sharded,
    get commandsReady() {
      return lastCommands;
    },
    get ready() {
      return lastReady;
    },
    run: (args, key) => cluster.sendCommand(key, false, args),
    publish: (channel, message) => (sharded ? cluster.sPublish(channel, message) : cluster.publish(channel, message)),
    subscribe: async (channel, listener) => {
      subscribed++;
      await (sharded ? cluster.sSubscribe(channel, listener) : cluster.subscribe(channel, listener));
      recompute();
    },
    unsubscribe: async (channel, listener) => {
      subscribed--;
      const untyped = listener as (message: string | Buffer) => void;
      await (sharded ? cluster.sUnsubscribe(channel, untyped) : cluster.unsubscribe(channel, untyped));
    },
    // One GET per key, each routed to its own slot's master.
    mGet: (keys) => Promise.all(keys.map((key) => cluster.get(key))),
    onChange: (listener) => void listeners.add(listener),
    close: async () => {
      closed = true;
      clearInterval(poll);
      recompute();
      await cluster.close().catch(() => cluster.destroy());
    },
  };
}
