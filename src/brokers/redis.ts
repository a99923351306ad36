// RedisBroker: Redis pub/sub through node-redis, on the channel's own name
// (plus an optional prefix), in django_sse's wire format — on one Redis, a
// Sentinel-managed master or a Redis Cluster (brokers/redis-link.ts). node-redis
// re-subscribes after a reconnect or a failover, and health follows both the
// command and the subscription connections (docs/operations.md#health-healthz).
import type {
  Broker,
  BrokerChannelIds,
  BrokerCounters,
  BrokerSessionKeys,
  SessionKeyReader,
  BrokerHealth,
  BrokerHistory,
  BrokerListener,
  BrokerPresence,
  HistoryLength,
  HistoryLimits,
  HistoryPage,
  HistorySnapshot,
  PresenceHandle,
  PresenceSource,
} from '../core/broker.js';
import { BrokerUnavailableError } from '../core/errors.js';
import type { SseEvent } from '../core/event.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { publishWithHistory, readHistory, historyKeys, type RunCommand } from './redis-history.js';
import {
  createRedisLink,
  type PubSubListener,
  type RedisClusterConfig,
  type RedisLink,
  type RedisSentinelConfig,
  type RedisTopology,
} from './redis-link.js';
import { RedisPresence } from './redis-presence.js';
import { decodePayload, encodePayload } from './redis-wire.js';
import { compareIdParts, formatId, parseEventId, type EventIdParts } from '../core/history.js';

export type { RedisClusterConfig, RedisSentinelConfig } from './redis-link.js';

export interface RedisBrokerOptions {
  /** node-redis URL of one Redis, e.g. `redis://127.0.0.1:6379`. Give exactly one of url, sentinel, cluster. */
  url?: string;
  /** A Sentinel-managed master (node-redis createSentinel). */
  sentinel?: RedisSentinelConfig;
  /** A Redis Cluster (node-redis createCluster). */
  cluster?: RedisClusterConfig;
  /** Prepended to every Redis channel name. Defaults to `''`. */
  channelPrefix?: string;
  /**
   * With history: after each write, `WAIT` until this many replicas have it
   * (within what is left of the send timeout), so a failover cannot lose an
   * event whose publish resolved. Defaults to 0 (no WAIT).
   */
  waitReplicas?: number;
  /** Longest a publish with waitReplicas may wait for the replicas, in ms. Defaults to 5000. */
  waitTimeout?: number;
  /**
   * Events carry history ids (the hub has history on): on a cluster, stale
   * live copies are then dropped per channel (see seenBefore). Defaults to false.
   */
  historyIds?: boolean;
  /** Defaults to silent. */
  logger?: Logger;
  /** Longest wait between reconnect attempts, in ms. Defaults to 2000. */
  maxReconnectDelay?: number;
  /**
   * Ms a process's presence record lives in Redis without a refresh (it is
   * refreshed every third of that). Defaults to 15000.
   */
  presenceTtl?: number;
}

/** After a WAIT came back short, how long writes are refused at once before the next try, in ms. */
const REPLICA_RETRY = 1000;

/** A channel's position before its first event. */
const NO_ID_YET: EventIdParts = [0, 0];

interface QueuedWrite {
  channel: string;
  event: SseEvent;
  limits: HistoryLimits;
  /** When the caller gives up (ms epoch): a write still queued then is never sent. */
  deadline: number;
  resolve: (id: string) => void;
  reject: (err: Error) => void;
}

export interface RedisBrokerCounters {
  /** Payloads that were not django_sse arrays and were delivered raw. */
  badPayloads: number;
  /** Times the subscribing connection came back after a loss. */
  reconnects: number;
  /** Publishes refused because fewer than waitReplicas replicas acknowledged the write in time. */
  replicaWaitsFailed: number;
}

/** The read-only key access session mode needs (fits SessionKeyReader), on any topology. */
export interface RedisKeyReader {
  readonly isReady: boolean;
  mGet(keys: string[]): Promise<readonly unknown[]>;
}

export class RedisBroker
  implements
    Broker,
    BrokerHealth,
    BrokerHistory,
    BrokerChannelIds,
    BrokerPresence,
    HistoryLength,
    BrokerCounters,
    BrokerSessionKeys
{
  readonly name = 'redis';
  readonly counters: RedisBrokerCounters = { badPayloads: 0, reconnects: 0, replicaWaitsFailed: 0 };
  /** Reads keys on the broker's own connection(s): session mode uses it, with no second connection. */
  readonly store: RedisKeyReader;

  /** The session-keys capability (core/broker.ts): the same reader as `store`. */
  get sessionKeys(): SessionKeyReader {
    return this.store;
  }
  /** single, sentinel or cluster. */
  readonly topology: RedisTopology['kind'];
  private readonly link: RedisLink;
  private readonly prefix: string;
  private readonly logger: Logger;
  private readonly waitReplicas: number;
  private readonly waitTimeout: number;
  private readonly healthListeners = new Set<(healthy: boolean) => void>();
  private healthy = false;
  private everReady = false;
  private closed = false;
  private readonly run: RunCommand;
  /** Channel → the node-redis listener of its subscription (see unsubscribe). */
  private readonly onMessage = new Map<string, PubSubListener>();
  /** waitReplicas: writes waiting for their round, by route (see durably). */
  private readonly waitQueues = new Map<string, QueuedWrite[]>();
  /** Until when writes are refused at once because the last WAIT came back short (ms epoch). */
  private replicasShortUntil = 0;
  private lastAcked = 0;
  private readonly dedupe: boolean;
  /** Cluster: channel → the greatest history id delivered on it (see seenBefore). */
  private readonly lastIds = new Map<string, EventIdParts>();
  private lastClock = 0;
  private clockSeq = 0;
  /** Channel → its last SUBSCRIBE/UNSUBSCRIBE, which the next one waits for (see serially). */
  private readonly channelOps = new Map<string, Promise<void>>();
  private readonly presenceTtl: number;
  private readonly presences = new Set<RedisPresence>();

  constructor(options: RedisBrokerOptions) {
    this.prefix = options.channelPrefix ?? '';
    this.logger = options.logger ?? silentLogger;
    this.presenceTtl = options.presenceTtl ?? 15_000;
    this.waitReplicas = options.waitReplicas ?? 0;
    this.waitTimeout = options.waitTimeout ?? 5000;
    this.dedupe = (options.historyIds ?? false) && options.cluster !== undefined;
    const given = [options.url, options.sentinel, options.cluster].filter((o) => o !== undefined).length;
    if (given !== 1) throw new TypeError('RedisBroker needs exactly one of url, sentinel or cluster');
    const topology: RedisTopology =
      options.url !== undefined
        ? { kind: 'single', url: options.url }
        : options.sentinel !== undefined
          ? { kind: 'sentinel', sentinel: options.sentinel }
          : { kind: 'cluster', cluster: options.cluster as RedisClusterConfig };
    this.topology = topology.kind;
    this.link = createRedisLink(topology, {
      logger: this.logger,
      maxReconnectDelay: options.maxReconnectDelay ?? 2000,
    });
    const link = this.link;
    // On a cluster, a script is routed by its first key (the channel's stream,
    // hash-tagged with the channel: brokers/redis-history.ts).
    this.run = (args, key) => link.run(args, key);
    this.store = {
      get isReady() {
        return link.commandsReady;
      },
      mGet: (keys) => link.mGet(keys),
    };
    // Health is commands and subscription both up (see isHealthy); re-read it
    // on every state change, so listeners hear each transition once.
    link.onChange((event) => {
      if (event === 'subscriber-ready') {
        if (this.everReady) this.counters.reconnects++;
        this.everReady = true;
      }
      this.updateHealth();
    });
  }

  /**
   * Up when the subscription is — and the publishing connection too, so that
   * /healthz never says 200 while sendEvent would still reject.
   */
  isHealthy(): boolean {
    return this.healthy;
  }

  onHealthChange(listener: (healthy: boolean) => void): () => void {
    this.healthListeners.add(listener);
    return () => this.healthListeners.delete(listener);
  }

  /** Resolves once commands and the subscription are up (for tests and start-up checks). */
  async ready(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.link.ready) {
      if (this.closed) throw new BrokerUnavailableError(this.name, 'the redis broker is closed');
      if (Date.now() > deadline) {
        throw new BrokerUnavailableError(this.name, `the redis broker could not connect within ${timeoutMs} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async publish(channel: string, event: SseEvent): Promise<void> {
    this.assertConnected();
    try {
      await this.link.publish(this.prefix + channel, encodePayload(event));
    } catch (err) {
      throw this.refused(err);
    }
  }

  /** History capability: id + XADD + PUBLISH in one Lua script (brokers/redis-history.ts). */
  async publishWithHistory(channel: string, event: SseEvent, limits: HistoryLimits): Promise<string> {
    this.assertConnected();
    if (this.waitReplicas > 0) return this.durably(channel, event, limits);
    try {
      return await publishWithHistory(
        this.run,
        this.prefix,
        channel,
        event,
        limits,
        this.perSlot,
        this.sharded,
        this.clock(),
      );
    } catch (err) {
      throw this.refused(err);
    }
  }

  /** On a cluster with history on, ids are ordered per channel only (core/broker.ts). */
  get idsPerChannel(): boolean {
    return this.dedupe;
  }

  channelLastId(channel: string): string | undefined {
    const last = this.lastIds.get(channel);
    return last === undefined ? undefined : formatId(last[0], last[1]);
  }

  private get perSlot(): boolean {
    return this.topology === 'cluster';
  }

  /**
   * On a cluster, the clock ids are made from: this process's, never going
   * back, so that events it publishes on channels of different shards get ids
   * in publish order whatever the shards' clocks say. undefined on one Redis
   * (its own TIME, as always).
   */
  private clock(): string | undefined {
    if (!this.perSlot) return undefined;
    const now = Date.now();
    // A sequence within the ms keeps this process's ids distinct across channels.
    if (now > this.lastClock) {
      this.lastClock = now;
      this.clockSeq = 0;
    } else this.clockSeq++;
    return `${this.lastClock}-${this.clockSeq}`;
  }

  private get sharded(): boolean {
    return this.link.sharded;
  }

  /**
   * waitReplicas: writes wait in a queue here (never in node-redis's, where a
   * write whose caller gave up would still run); each round sends every
   * queued write, then ONE `WAIT n timeout` on the same connection — WAIT
   * counts that connection's writes and blocks it, so rounds never overlap
   * (group commit: one replication round trip per round, not per event).
   * On a cluster each channel's slot has its own queue.
   */
  private durably(channel: string, event: SseEvent, limits: HistoryLimits): Promise<string> {
    const route = this.perSlot ? channel : '';
    return new Promise((resolve, reject) => {
      let queue = this.waitQueues.get(route);
      if (queue === undefined) this.waitQueues.set(route, (queue = []));
      queue.push({ channel, event, limits, deadline: Date.now() + this.waitTimeout, resolve, reject });
      if (queue.length === 1) void this.waitRound(route);
    });
  }

  private async waitRound(route: string): Promise<void> {
    const queue = this.waitQueues.get(route);
    if (queue === undefined || queue.length === 0) return;
    const now = Date.now();
    const round = queue.slice();
    const due: typeof round = [];
    for (const write of round) {
      if (write.deadline <= now) {
        write.reject(
          new BrokerUnavailableError(
            this.name,
            'the redis broker was still waiting for replicas on earlier events; this one was not sent',
          ),
        );
      } else if (now < this.replicasShortUntil) {
        // The last round lacked replicas: refuse at once for a moment instead
        // of blocking every caller for the whole timeout.
        this.counters.replicaWaitsFailed++;
        write.reject(this.tooFewReplicas(write.channel, this.lastAcked));
      } else due.push(write);
    }
    try {
      if (due.length === 0) return;
      const ids = await Promise.allSettled(
        due.map((w) =>
          publishWithHistory(
            this.run,
            this.prefix,
            w.channel,
            w.event,
            w.limits,
            this.perSlot,
            this.sharded,
            this.clock(),
          ),
        ),
      );
      const timeout = Math.max(1, Math.min(...due.map((w) => w.deadline)) - Date.now());
      const key = historyKeys(this.prefix, this.perSlot).stream((due[0] as { channel: string }).channel);
      let acked = -1;
      let waitError: unknown;
      try {
        acked = Number(await this.run(['WAIT', String(this.waitReplicas), String(timeout)], key));
      } catch (err) {
        waitError = err;
      }
      if (acked >= 0 && acked < this.waitReplicas) {
        this.lastAcked = acked;
        this.replicasShortUntil = Date.now() + REPLICA_RETRY;
      }
      due.forEach((write, i) => {
        const outcome = ids[i] as PromiseSettledResult<string>;
        if (outcome.status === 'rejected') write.reject(this.refused(outcome.reason));
        else if (waitError !== undefined) write.reject(this.refused(waitError));
        else if (acked < this.waitReplicas) {
          this.counters.replicaWaitsFailed++;
          write.reject(this.tooFewReplicas(write.channel, acked));
        } else write.resolve(outcome.value);
      });
    } finally {
      queue.splice(0, round.length);
      if (queue.length > 0) void this.waitRound(route);
      else this.waitQueues.delete(route);
    }
  }

  private tooFewReplicas(channel: string, acked: number): BrokerUnavailableError {
    return new BrokerUnavailableError(
      this.name,
      `only ${acked} of ${this.waitReplicas} replicas acknowledged the last writes (redisWaitReplicas): the event on channel "${channel}" may not survive a failover`,
    );
  }

  async readHistory(
    after: ReadonlyMap<string, string>,
    limits: HistoryLimits,
    page?: HistoryPage,
  ): Promise<HistorySnapshot> {
    this.assertConnected();
    try {
      return await readHistory(this.run, this.prefix, after, limits, page, this.perSlot, this.clock());
    } catch (err) {
      throw new BrokerUnavailableError(this.name, `could not read history from redis: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /** History length capability: XLEN of each channel's stream, pipelined. */
  async historyLength(channels: readonly string[]): Promise<number[]> {
    this.assertConnected();
    const keys = historyKeys(this.prefix, this.topology === 'cluster');
    const lengths = await Promise.all(
      channels.map((channel) => this.run(['XLEN', keys.stream(channel)], keys.stream(channel))),
    );
    return lengths.map(Number);
  }

  /** Presence capability: this process's record, refreshed until stop() (brokers/redis-presence.ts). */
  trackPresence(source: PresenceSource): PresenceHandle {
    const presence = new RedisPresence(source, {
      run: this.run,
      prefix: this.prefix,
      ttl: this.presenceTtl,
      logger: this.logger,
      ready: () => !this.closed && this.link.commandsReady,
    });
    this.presences.add(presence);
    return {
      readOthers: async (channel) => {
        this.assertConnected();
        try {
          return await presence.readOthers(channel);
        } catch (err) {
          throw new BrokerUnavailableError(this.name, `could not read presence from redis: ${(err as Error).message}`, {
            cause: err,
          });
        }
      },
      stop: () => presence.stop(),
    };
  }

  // node-redis would queue commands until Redis is back; refuse instead, so
  // sendEvent rejects at once while Redis is down (docs/guarantees.md#broker-faults).
  private assertConnected(): void {
    if (this.closed) throw new BrokerUnavailableError(this.name, 'the redis broker is closed');
    if (!this.link.commandsReady) {
      throw new BrokerUnavailableError(this.name, 'the redis broker is not connected; the event was not sent');
    }
  }

  private refused(err: unknown): BrokerUnavailableError {
    return new BrokerUnavailableError(this.name, `the redis broker refused the event: ${(err as Error).message}`, {
      cause: err,
    });
  }

  subscribe(channel: string, listener: BrokerListener): Promise<void> {
    const onMessage = (message: string): void => {
      const { event, wellFormed } = decodePayload(message);
      if (!wellFormed) {
        this.counters.badPayloads++;
        this.logger.debug('delivered a payload that is not a django_sse array as a raw message', {
          channel,
          bytes: message.length,
        });
      }
      if (this.dedupe && event.id !== undefined && this.seenBefore(channel, event.id)) return;
      listener(event);
    };
    this.onMessage.set(channel, onMessage);
    return this.serially(channel, async () => {
      await this.link.subscribe(this.prefix + channel, onMessage);
      if (this.dedupe) await this.markSubscribed(channel);
    });
  }

  /**
   * Cluster with history: a channel's ids only grow (one slot, one script),
   * so an event at or below the last one delivered on that channel — or
   * below the channel's last id when its subscription became live — is
   * stale. Classic pub/sub reaches a node over the cluster bus, which can be
   * slower than the client's own SUBSCRIBE: an event published just before
   * the subscription can arrive just after it, after the history read that
   * already holds it (the hub's floors assume one ordered connection).
   */
  /** The channel's last id once its subscription is live: anything at or below it is in history. */
  private async markSubscribed(channel: string): Promise<void> {
    const keys = historyKeys(this.prefix, true);
    try {
      const last = await this.run(['GET', keys.lastId(channel)], keys.stream(channel));
      // No last id: nothing was ever published there (or it expired), so every event to come is new.
      const parts = typeof last === 'string' ? parseEventId(last) : last === null ? NO_ID_YET : undefined;
      const seen = this.lastIds.get(channel);
      if (parts !== undefined && (seen === undefined || compareIdParts(parts, seen) > 0))
        this.lastIds.set(channel, parts);
    } catch {
      // Redis away: no mark; the hub's own catch-up covers the outage.
    }
  }

  private seenBefore(channel: string, id: string): boolean {
    const parts = parseEventId(id);
    if (parts === undefined) return false;
    const last = this.lastIds.get(channel);
    if (last !== undefined && compareIdParts(parts, last) <= 0) {
      return true;
    }
    this.lastIds.set(channel, parts);
    return false;
  }

  unsubscribe(channel: string): Promise<void> {
    const onMessage = this.onMessage.get(channel);
    this.onMessage.delete(channel);
    this.lastIds.delete(channel);
    if (onMessage === undefined) return Promise.resolve();
    return this.serially(channel, () => this.link.unsubscribe(this.prefix + channel, onMessage));
  }

  /**
   * Runs SUBSCRIBE/UNSUBSCRIBE of one channel one after the other. node-redis
   * keeps listeners per channel and, when a subscribe overlaps an unsubscribe
   * still in flight, can drop the new listener (the channel goes silent) or
   * keep a stale one (every event twice) — both seen when a client
   * reconnects at once. Serialised, the hub's one-subscription-per-channel
   * promise holds.
   */
  private serially(channel: string, op: () => Promise<void>): Promise<void> {
    const previous = this.channelOps.get(channel) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(op);
    this.channelOps.set(channel, next);
    const forget = (): void => {
      if (this.channelOps.get(channel) === next) this.channelOps.delete(channel);
    };
    next.then(forget, forget);
    return next;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const presence of this.presences) presence.stop();
    await Promise.all([...this.presences].map((presence) => presence.withdrawn));
    this.closed = true;
    this.updateHealth();
    await this.link.close();
  }

  private updateHealth(): void {
    const healthy = !this.closed && this.link.ready;
    if (healthy === this.healthy) return;
    this.healthy = healthy;
    for (const listener of this.healthListeners) listener(healthy);
  }
}
