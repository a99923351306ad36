// HubOptions: every knob of createHub(), with units and defaults, merged once
// and validated eagerly so a typo fails at start-up, not on the first request.
import type { Broker } from './broker.js';

/** A Sentinel-managed master (node-redis createSentinel); see docs/deployment.md#sentinel. */
export interface RedisSentinelOptions {
  /** The master's name in the sentinels' configuration (`sentinel monitor NAME …`). */
  name: string;
  /** Sentinels as `host:port` strings (or `{ host, port }`); give three or more. */
  sentinels: readonly (string | { host: string; port: number })[];
  /** ACL user of the master and replicas. Defaults to none. */
  username?: string;
  /** Password of the master and replicas. Defaults to none. */
  password?: string;
  /** ACL user of the sentinels. Defaults to none. */
  sentinelUsername?: string;
  /** Password of the sentinels (their own `requirepass`). Defaults to none. */
  sentinelPassword?: string;
  /** TLS to every node and sentinel. Defaults to false. */
  tls?: boolean;
}

/** A Redis Cluster (node-redis createCluster); see docs/deployment.md#cluster. */
export interface RedisClusterOptions {
  /** Seed nodes as `redis://host:port` URLs (`rediss://` for TLS); any reachable one will do. */
  nodes: readonly string[];
  /** ACL user of every node, when the URLs carry none. */
  username?: string;
  /** Password of every node, when the URLs carry none. */
  password?: string;
}
import { OptionError } from './errors.js';
import { redactUrls } from './redact.js';
import { silentLogger, type Logger } from './logger.js';

export interface HistoryOptions {
  /** Events kept per channel for Last-Event-ID replay. Defaults to 1000. */
  size?: number;
  /** Seconds an event is kept for replay. Defaults to 3600. */
  ttl?: number;
}

export interface HubOptions {
  /**
   * `memory` (one process, no set-up), `redis`, or a Broker instance of your own.
   * Defaults to `redis` when `redisUrl`, `REDIS_URL` or `SSE_REDIS_URL` is set, else `memory`.
   */
  broker?: 'memory' | 'redis' | Broker;
  /** node-redis URL, e.g. `redis://127.0.0.1:6379`. Defaults to `SSE_REDIS_URL`, then `REDIS_URL`. */
  redisUrl?: string;
  /** Use a Sentinel-managed master instead of redisUrl. Defaults to `SSE_REDIS_SENTINEL` + `SSE_REDIS_SENTINEL_NAME`. */
  redisSentinel?: RedisSentinelOptions;
  /** Use a Redis Cluster instead of redisUrl. Defaults to `SSE_REDIS_CLUSTER` (comma-separated URLs). */
  redisCluster?: RedisClusterOptions;
  /**
   * Pub/sub on a Redis Cluster: `classic` (PUBLISH/SUBSCRIBE; any publisher's
   * plain PUBLISH reaches everyone, every node carries every message) or
   * `sharded` (SPUBLISH/SSUBSCRIBE; each message stays in its shard, plain
   * PUBLISH publishers are not heard). Defaults to `classic`.
   */
  pubsub?: 'classic' | 'sharded';
  /**
   * With history on Redis: after each write, WAIT until this many replicas
   * acknowledged it (within sendTimeout), so an event whose sendEvent resolved
   * survives a failover. Costs a replication round trip per event
   * (docs/deployment.md#--redis-wait-replicas). Defaults to 0 (no WAIT).
   */
  redisWaitReplicas?: number;
  /** Prepended to every Redis channel name (e.g. `sse:`). Defaults to `''`, as django_sse. */
  channelPrefix?: string;
  /** Milliseconds between `: ping` comments on an idle stream. Defaults to 15000. */
  heartbeat?: number;
  /**
   * Send the heartbeat as an event pages can see (`event: heartbeat`, data
   * `{"heartbeat":<ms>,"time":<epoch ms>}`, also the first event of every
   * stream) instead of a `: ping` comment, so sse.js can run a watchdog.
   * Defaults to false.
   */
  heartbeatEvent?: boolean;
  /** Milliseconds a browser waits before reconnecting (the `retry:` field). Defaults to 3000. */
  retry?: number;
  /** Channels one connection may listen on. Defaults to 64. */
  maxChannels?: number;
  /** Unsent bytes a connection may hold before the next frame closes it. Defaults to 4 MiB. */
  maxBufferedBytes?: number;
  /** Milliseconds sendEvent waits for the broker before rejecting. Defaults to 5000. */
  sendTimeout?: number;
  /** Keep events for Last-Event-ID replay (docs/guarantees.md#history-event-ids-and-resume). `true` uses the defaults. Defaults to off. */
  history?: boolean | HistoryOptions;
  /**
   * Channels that send `presence` events (join/leave with the user and the
   * count) to their subscribers; `*` matches any run of name characters, e.g.
   * `['lobby', 'team-*']`. Defaults to none.
   */
  presenceChannels?: readonly string[];
  /** Ms a user must stay gone before their `leave` is sent; a reconnect within it sends nothing. Defaults to 2000. */
  presenceDebounce?: number;
  /**
   * Seconds a process's presence record lives in Redis without a refresh; it
   * is refreshed every third of that, so a process that dies drops out of
   * presence within this time. Defaults to 15.
   */
  presenceTtl?: number;
  /**
   * Streams this hub serves at once, in this process (streams still being
   * authorized count too); past it a new stream gets 200 + a jittered
   * `retry:` and ends (SECURITY.md). 0 turns the cap off. Defaults to 20000.
   */
  maxConnections?: number;
  /**
   * Streams one client address may hold at once (IPv6: one /64), keyed on
   * Express's `req.ip` when present, else the socket's address. 0 turns the
   * cap off. Defaults to 0 (off): behind a reverse proxy every stream has the
   * proxy's address unless `trust proxy` names the client (SECURITY.md).
   */
  maxConnectionsPerIp?: number;
  /**
   * Replays (resumes with a Last-Event-ID) running at once in this hub; one
   * more waits on its open stream for a slot, first come first served, and
   * is counted. Defaults to 256 (see docs/guarantees.md).
   */
  maxReplays?: number;
  /**
   * Milliseconds a replay may wait on a client that takes no bytes at all;
   * then it is closed like a slow client, and counted. Defaults to 30000
   * (see docs/guarantees.md).
   */
  replayStallTimeout?: number;
  /**
   * Bytes the history cache of this hub holds at most, over every channel
   * (docs/performance.md#the-history-cache): recent history that resumes on
   * a shared (Redis) history read from memory instead of each reading Redis.
   * One channel holds at most 16 MiB of it. 0 turns the cache off. Defaults
   * to 64 MiB.
   */
  historyCacheBytes?: number;
  /**
   * Milliseconds over which close() ends the open streams, in even batches,
   * so their reconnects do not all land at once; 0 ends them all at once.
   * Defaults to 0.
   */
  drainTime?: number;
  /** Where sse-hub logs. Defaults to silent. */
  logger?: Logger;
}

export interface ResolvedHubOptions {
  broker: 'memory' | 'redis' | Broker;
  redisUrl: string | undefined;
  redisSentinel: RedisSentinelOptions | undefined;
  redisCluster: RedisClusterOptions | undefined;
  pubsub: 'classic' | 'sharded';
  redisWaitReplicas: number;
  channelPrefix: string;
  heartbeat: number;
  heartbeatEvent: boolean;
  retry: number;
  maxChannels: number;
  maxBufferedBytes: number;
  sendTimeout: number;
  history: Required<HistoryOptions> | null;
  presenceChannels: readonly string[];
  presenceDebounce: number;
  presenceTtl: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  maxReplays: number;
  replayStallTimeout: number;
  historyCacheBytes: number;
  drainTime: number;
  logger: Logger;
}

export const DEFAULT_HISTORY: Required<HistoryOptions> = { size: 1000, ttl: 3600 };

const DEFAULTS = {
  channelPrefix: '',
  heartbeat: 15_000,
  heartbeatEvent: false,
  retry: 3000,
  maxChannels: 64,
  maxBufferedBytes: 4 * 1024 * 1024,
  sendTimeout: 5000,
  presenceDebounce: 2000,
  presenceTtl: 15,
  maxConnections: 20_000,
  maxConnectionsPerIp: 0,
  maxReplays: 256,
  replayStallTimeout: 30_000,
  historyCacheBytes: 64 * 1024 * 1024,
  drainTime: 0,
} as const;

/** A channel name in which `*` may stand for any run of name characters. */
const PRESENCE_PATTERN = /^[A-Za-z0-9_.:@*-]{1,128}$/;

/** Reads the Redis URL from the environment (SSE_REDIS_URL, then REDIS_URL; docs/api.md#options). */
export function redisUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.SSE_REDIS_URL || env.REDIS_URL || undefined;
}

export function resolveHubOptions(options: HubOptions = {}, env: NodeJS.ProcessEnv = process.env): ResolvedHubOptions {
  if (typeof options !== 'object' || options === null) {
    throw new OptionError(`createHub options must be an object, got ${options === null ? 'null' : typeof options}`);
  }
  const merged = { ...DEFAULTS, ...withoutUndefined(options) };
  const redisSentinel = options.redisSentinel ?? sentinelFromEnv(env);
  const redisCluster = options.redisCluster ?? clusterFromEnv(env);
  // An explicit sentinel or cluster wins over a REDIS_URL left in the environment.
  const redisUrl =
    options.redisUrl ??
    (options.redisSentinel === undefined && options.redisCluster === undefined ? redisUrlFromEnv(env) : undefined);
  const targets = [redisUrl, redisSentinel, redisCluster].filter((t) => t !== undefined).length;
  if (targets > 1) {
    throw new OptionError('give only one of redisUrl, redisSentinel and redisCluster (or their environment variables)');
  }
  const broker = options.broker ?? (targets === 1 ? 'redis' : 'memory');

  if (typeof broker === 'string' && broker !== 'memory' && broker !== 'redis') {
    throw new OptionError(`broker must be 'memory', 'redis' or a Broker instance, got ${JSON.stringify(broker)}`);
  }
  if (typeof broker === 'object' && (broker === null || typeof broker.publish !== 'function')) {
    throw new OptionError('broker must be a Broker with publish/subscribe/unsubscribe/close');
  }
  if (broker === 'redis' && targets === 0) {
    throw new OptionError(
      "broker 'redis' needs redisUrl, redisSentinel or redisCluster (or REDIS_URL / SSE_REDIS_URL / SSE_REDIS_SENTINEL / SSE_REDIS_CLUSTER in the environment)",
    );
  }
  if (redisSentinel !== undefined) validateSentinel(redisSentinel);
  if (redisCluster !== undefined) validateCluster(redisCluster);
  const pubsub = options.pubsub ?? (env.SSE_PUBSUB as 'classic' | 'sharded' | undefined) ?? 'classic';
  if (pubsub !== 'classic' && pubsub !== 'sharded') {
    throw new OptionError(`pubsub must be 'classic' or 'sharded', got ${JSON.stringify(pubsub)}`);
  }
  if (pubsub === 'sharded' && redisCluster === undefined) {
    throw new OptionError("pubsub 'sharded' needs redisCluster: sharded pub/sub is a Redis Cluster feature");
  }
  const redisWaitReplicas = options.redisWaitReplicas ?? 0;
  if (redisWaitReplicas !== 0) positiveInteger('redisWaitReplicas', redisWaitReplicas, 'replicas');
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    throw new OptionError(
      `redisUrl must start with redis:// or rediss://, got ${redactUrls(JSON.stringify(redisUrl))}`,
    );
  }
  if (typeof merged.channelPrefix !== 'string') {
    throw new OptionError(`channelPrefix must be a string, got ${typeof merged.channelPrefix}`);
  }
  positiveInteger('heartbeat', merged.heartbeat, 'ms');
  if (typeof merged.heartbeatEvent !== 'boolean') {
    throw new OptionError(`heartbeatEvent must be true or false, got ${JSON.stringify(merged.heartbeatEvent)}`);
  }
  positiveInteger('retry', merged.retry, 'ms');
  positiveInteger('maxChannels', merged.maxChannels, 'channels');
  positiveInteger('maxBufferedBytes', merged.maxBufferedBytes, 'bytes');
  positiveInteger('sendTimeout', merged.sendTimeout, 'ms');
  const presenceChannels = options.presenceChannels ?? [];
  if (!Array.isArray(presenceChannels) || !presenceChannels.every((p) => PRESENCE_PATTERN.test(String(p)))) {
    throw new OptionError(
      `presenceChannels must be a list of channel names, * matching any characters (e.g. ["lobby", "team-*"]), got ${JSON.stringify(presenceChannels)}`,
    );
  }
  if (
    typeof merged.presenceDebounce !== 'number' ||
    !Number.isInteger(merged.presenceDebounce) ||
    merged.presenceDebounce < 0
  ) {
    throw new OptionError(
      `presenceDebounce must be a whole number of ms >= 0, got ${JSON.stringify(merged.presenceDebounce)}`,
    );
  }
  positiveInteger('presenceTtl', merged.presenceTtl, 'seconds');
  if (merged.presenceTtl < 3)
    throw new OptionError(`presenceTtl must be at least 3 seconds, got ${merged.presenceTtl}`);
  nonNegativeInteger('maxConnections', merged.maxConnections, 'connections (0: no cap)');
  nonNegativeInteger('maxConnectionsPerIp', merged.maxConnectionsPerIp, 'connections (0: no cap)');
  positiveInteger('maxReplays', merged.maxReplays, 'replays');
  positiveInteger('replayStallTimeout', merged.replayStallTimeout, 'ms');
  nonNegativeInteger('historyCacheBytes', merged.historyCacheBytes, 'bytes (0: no cache)');
  nonNegativeInteger('drainTime', merged.drainTime, 'ms (0: all at once)');

  return {
    broker,
    redisUrl,
    redisSentinel,
    redisCluster,
    pubsub,
    redisWaitReplicas,
    channelPrefix: merged.channelPrefix,
    heartbeat: merged.heartbeat,
    heartbeatEvent: merged.heartbeatEvent,
    retry: merged.retry,
    maxChannels: merged.maxChannels,
    maxBufferedBytes: merged.maxBufferedBytes,
    sendTimeout: merged.sendTimeout,
    history: resolveHistory(options.history),
    presenceChannels: [...presenceChannels],
    presenceDebounce: merged.presenceDebounce,
    presenceTtl: merged.presenceTtl,
    maxConnections: merged.maxConnections,
    maxConnectionsPerIp: merged.maxConnectionsPerIp,
    maxReplays: merged.maxReplays,
    replayStallTimeout: merged.replayStallTimeout,
    historyCacheBytes: merged.historyCacheBytes,
    drainTime: merged.drainTime,
    logger: options.logger ?? silentLogger,
  };
}

/** SSE_REDIS_SENTINEL=host:port,… with SSE_REDIS_SENTINEL_NAME and the credential variables. */
export function sentinelFromEnv(env: NodeJS.ProcessEnv = process.env): RedisSentinelOptions | undefined {
  if (!env.SSE_REDIS_SENTINEL) return undefined;
  return {
    name: env.SSE_REDIS_SENTINEL_NAME ?? '',
    sentinels: splitList(env.SSE_REDIS_SENTINEL),
    username: env.SSE_REDIS_USERNAME || undefined,
    password: env.SSE_REDIS_PASSWORD || undefined,
    sentinelUsername: env.SSE_REDIS_SENTINEL_USERNAME || undefined,
    sentinelPassword: env.SSE_REDIS_SENTINEL_PASSWORD || undefined,
    tls: env.SSE_REDIS_TLS === 'true' || env.SSE_REDIS_TLS === '1',
  };
}

/** SSE_REDIS_CLUSTER=redis://host:port,… with the credential variables. */
export function clusterFromEnv(env: NodeJS.ProcessEnv = process.env): RedisClusterOptions | undefined {
  if (!env.SSE_REDIS_CLUSTER) return undefined;
  return {
    nodes: splitList(env.SSE_REDIS_CLUSTER),
    username: env.SSE_REDIS_USERNAME || undefined,
    password: env.SSE_REDIS_PASSWORD || undefined,
  };
}

const splitList = (value: string): string[] =>
  value
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');

function validateSentinel(sentinel: RedisSentinelOptions): void {
  if (typeof sentinel !== 'object' || sentinel === null) {
    throw new OptionError('redisSentinel must be { name, sentinels: ["host:port", ...] }');
  }
  if (typeof sentinel.name !== 'string' || sentinel.name === '') {
    throw new OptionError(
      "redisSentinel.name must be the master's name from the sentinels' configuration (SSE_REDIS_SENTINEL_NAME), e.g. mymaster",
    );
  }
  if (!Array.isArray(sentinel.sentinels) || sentinel.sentinels.length === 0) {
    throw new OptionError('redisSentinel.sentinels must list at least one sentinel as host:port');
  }
  for (const s of sentinel.sentinels) {
    const ok =
      typeof s === 'string'
        ? /^\[?[^\]]+?\]?:\d{1,5}$/.test(s)
        : typeof s === 'object' && s !== null && typeof s.host === 'string' && Number.isInteger(s.port);
    if (!ok) throw new OptionError(`redisSentinel.sentinels: expected host:port, got ${JSON.stringify(s)}`);
  }
}

function validateCluster(cluster: RedisClusterOptions): void {
  if (typeof cluster !== 'object' || cluster === null || !Array.isArray(cluster.nodes) || cluster.nodes.length === 0) {
    throw new OptionError('redisCluster must be { nodes: ["redis://host:port", ...] } with at least one seed node');
  }
  for (const url of cluster.nodes) {
    if (typeof url !== 'string' || !/^rediss?:\/\//.test(url)) {
      throw new OptionError(
        `redisCluster.nodes: each must start with redis:// or rediss://, got ${JSON.stringify(url)}`,
      );
    }
  }
}

function resolveHistory(history: HubOptions['history']): Required<HistoryOptions> | null {
  if (history === undefined || history === false) return null;
  if (history === true) return { ...DEFAULT_HISTORY };
  if (typeof history !== 'object' || history === null) {
    throw new OptionError(`history must be true, false or { size, ttl }, got ${JSON.stringify(history)}`);
  }
  const resolved = { ...DEFAULT_HISTORY, ...withoutUndefined(history) };
  positiveInteger('history.size', resolved.size, 'events');
  positiveInteger('history.ttl', resolved.ttl, 'seconds');
  return resolved;
}

/** Throws OptionError unless `value` is a whole number ≥ 1. */
export function positiveInteger(name: string, value: unknown, unit: string): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new OptionError(`${name} must be a positive whole number of ${unit}, got ${JSON.stringify(value)}`);
  }
}

/** Throws OptionError unless `value` is a whole number ≥ 0. */
export function nonNegativeInteger(name: string, value: unknown, unit: string): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new OptionError(`${name} must be a whole number >= 0 of ${unit}, got ${JSON.stringify(value)}`);
  }
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
