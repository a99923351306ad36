// The one small interface every broker implements (docs/brokers.md#writing-a-broker),
// plus optional capabilities detected with type guards. A broker without the
// health capability is always healthy. Code outside brokers/ reaches a broker
// only through these declarations, never through a broker's class.
import type { EventIdParts } from './history.js';
import type { SseEvent } from './event.js';

/** Receives every event published on one channel, already decoded. */
export type BrokerListener = (event: SseEvent) => void;

export interface Broker {
  /** Short name used in errors, logs and /healthz: `memory`, `redis`, ... */
  readonly name: string;
  /**
   * Hands an event to the broker for every process subscribed to `channel`.
   * Resolves once the broker has accepted it; rejects with
   * BrokerUnavailableError when it cannot. The hub bounds the wait.
   */
  publish(channel: string, event: SseEvent): Promise<void>;
  /**
   * Starts delivering `channel`'s events to `listener`. The hub calls this once
   * per channel (reference counted) and never twice without an unsubscribe in
   * between. It must keep the subscription across reconnects.
   */
  subscribe(channel: string, listener: BrokerListener): Promise<void>;
  /** Stops delivering `channel`. */
  unsubscribe(channel: string): Promise<void>;
  /** Releases every connection; later publishes reject. */
  close(): Promise<void>;
}

/** Optional capability: whether events can flow right now (docs/operations.md#health-healthz). */
export interface BrokerHealth {
  /** True while the broker's subscription connection is up. */
  isHealthy(): boolean;
  /**
   * Calls `listener` whenever health changes. Returns a function that removes it.
   */
  onHealthChange(listener: (healthy: boolean) => void): () => void;
}

export function hasHealth(broker: Broker): broker is Broker & BrokerHealth {
  const candidate = broker as Partial<BrokerHealth>;
  return typeof candidate.isHealthy === 'function' && typeof candidate.onHealthChange === 'function';
}

/** What a broker counts for `/metrics` (http/metrics.ts reads it at scrape time). */
export interface BrokerCounterValues {
  /** Payloads that were not django_sse arrays and were delivered raw. */
  readonly badPayloads: number;
  /** Times the subscription connection came back after a loss. */
  readonly reconnects: number;
  /** Publishes refused because too few replicas acknowledged the write in time (Redis waitReplicas). */
  readonly replicaWaitsFailed?: number;
}

/** Optional capability: counters a broker keeps about its own connection. */
export interface BrokerCounters {
  readonly counters: BrokerCounterValues;
}

export function hasCounters(broker: Broker): broker is Broker & BrokerCounters {
  const candidate = broker as Partial<BrokerCounters>;
  return typeof candidate.counters === 'object' && candidate.counters !== null;
}

/**
 * The read-only part of a key-value client that session mode needs to read
 * the sessions a web app's store wrote. A node-redis client fits
 * (`client.mGet`, `client.isReady`).
 */
export interface SessionKeyReader {
  /** False while the store cannot answer (node-redis would queue, not fail). */
  readonly isReady: boolean;
  /** One value per key, null where the key does not exist. */
  mGet(keys: string[]): Promise<readonly unknown[]>;
}

/**
 * Optional capability: read keys of the store the broker connects to, so
 * session mode (`sse-runserver --channels session`) needs no second connection.
 */
export interface BrokerSessionKeys {
  readonly sessionKeys: SessionKeyReader;
}

export function hasSessionKeys(broker: Broker): broker is Broker & BrokerSessionKeys {
  const candidate = broker as Partial<BrokerSessionKeys>;
  return typeof candidate.sessionKeys === 'object' && candidate.sessionKeys !== null;
}

/** How much history a channel keeps (docs/brokers.md#the-history-capability): the newest `size` events, none older than `ttl` seconds. */
export interface HistoryLimits {
  /** Events kept per channel. */
  size: number;
  /** Seconds an event is kept. */
  ttl: number;
}

/** What history holds for one channel after a given id. */
export interface ChannelHistory {
  /** Kept events with an id greater than the one asked for, oldest first; each has its `id`. */
  events: SseEvent[];
  /** The oldest id still kept on the channel, or null when it keeps none. */
  oldestId: string | null;
  /**
   * Every event with an id greater than this one is still kept. A client
   * whose last id is smaller may have missed events: it gets a `gap` event.
   */
  horizon: string;
  /**
   * True when the read stopped at the page's `count`: more events may be kept
   * after the last one returned. Absent or false: `events` is all there is.
   */
  more?: boolean;
  /**
   * Each event's id, parsed, when the history holds them parsed already (the
   * history cache): a crowd of replays then does not parse the same ids once
   * per client. Same length and order as `events`; both arrays are the
   * reader's to keep.
   */
  ids?: EventIdParts[];
}

/** A bounded read: at most `count` events per channel, so no read holds a whole history. */
export interface HistoryPage {
  count: number;
}

/** One atomic look at the history of several channels. */
export interface HistorySnapshot {
  channels: Map<string, ChannelHistory>;
  /** The greatest id handed out so far (or a fresh one): every later event's id is greater. */
  lastId: string;
}

/**
 * Optional capability: ids and per-channel history shared by every process
 * using the broker (docs/brokers.md#the-history-capability). Without it the hub keeps history in memory
 * (core/history.ts), which only works within one process.
 */
export interface BrokerHistory {
  /**
   * Gives `event` a fresh id (greater than every id before it, on any
   * channel), stores it in `channel`'s history and publishes it — atomically,
   * so the history order is the delivery order. Resolves to the id.
   */
  publishWithHistory(channel: string, event: SseEvent, limits: HistoryLimits): Promise<string>;
  /**
   * Reads, at one instant, each channel's kept events after its id in
   * `after` (ids as produced by publishWithHistory, already validated). With
   * `page`, at most `page.count` events per channel, flagged `more` when the
   * read stopped there; the hub reads replays and catch-ups this way, so a
   * broker should honour it (one that ignores it returns whole histories).
   */
  readHistory(after: ReadonlyMap<string, string>, limits: HistoryLimits, page?: HistoryPage): Promise<HistorySnapshot>;
}

export function hasHistory(broker: Broker): broker is Broker & BrokerHistory {
  const candidate = broker as Partial<BrokerHistory>;
  return typeof candidate.publishWithHistory === 'function' && typeof candidate.readHistory === 'function';
}

/**
 * Optional capability: ids ordered within each channel only, not across
 * channels (Redis Cluster: each channel's slot issues its own ids, and
 * events of different shards reach a process on different paths). The hub
 * then keeps each stream's position on every one of its channels, and a
 * stream on several channels gets ids that list them
 * (docs/deployment.md#ids-across-shards).
 */
export interface BrokerChannelIds {
  /** True when ids are ordered per channel only. */
  readonly idsPerChannel: boolean;
  /**
   * The newest id on `channel` that this process knows of since the
   * channel's subscription became live (`0-0` when the channel has none
   * yet); undefined until then.
   */
  channelLastId(channel: string): string | undefined;
}

export function hasChannelIds(broker: Broker): broker is Broker & BrokerChannelIds {
  const candidate = broker as Partial<BrokerChannelIds>;
  return candidate.idsPerChannel === true && typeof candidate.channelLastId === 'function';
}

/** Who is on one channel: open connections, and the distinct user names among them (session mode). */
export interface ChannelPresence {
  /** Open SSE connections listening on the channel. */
  connections: number;
  /** Distinct users among them, sorted; connections without a user (query mode) add none. */
  users: string[];
}

/** What one process has open right now, read by the broker whenever it refreshes its record. */
export interface PresenceSource {
  /** Grows whenever the snapshot changes: an unchanged record only has its TTL extended. */
  readonly version: number;
  /** Channel → presence in this process (channels with at least one connection only). */
  snapshot(): ReadonlyMap<string, ChannelPresence>;
}

/** The other processes' presence, as a broker last saw it. */
export interface PresenceReading {
  /** Live processes other than the reader. */
  processes: number;
  /** Channel → their summed presence (users merged, deduplicated). */
  channels: Map<string, ChannelPresence>;
}

/** A process's registration with a presence-capable broker. */
export interface PresenceHandle {
  /** The other processes' presence: one channel, or every channel. This process's own is not included. */
  readOthers(channel?: string): Promise<PresenceReading>;
  /** Stops refreshing and withdraws this process's record. */
  stop(): void;
}

/**
 * Optional capability: presence across every process sharing the broker
 * (docs/operations.md "Presence"). Each process publishes a small record of
 * its own connections, refreshed on a timer (never per event), and readers
 * sum the live records; a process that dies drops out when its record expires.
 */
export interface BrokerPresence {
  trackPresence(source: PresenceSource): PresenceHandle;
}

export function hasPresence(broker: Broker): broker is Broker & BrokerPresence {
  return typeof (broker as Partial<BrokerPresence>).trackPresence === 'function';
}

/**
 * Optional capability of a history store: how many events each channel keeps
 * right now (for the admin dashboard). Implemented by MemoryHistory and RedisBroker.
 */
export interface HistoryLength {
  historyLength(channels: readonly string[]): Promise<number[]>;
}

export function hasHistoryLength(store: object): store is HistoryLength {
  return typeof (store as Partial<HistoryLength>).historyLength === 'function';
}
