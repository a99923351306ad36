// RedisBroker: Redis pub/sub through node-redis, on the channel's own name
// (plus an optional prefix), in django_sse's wire format. One publishing
// client and one duplicate() for SUBSCRIBE; node-redis re-subscribes after a
// reconnect, and health follows the subscribing connection itself (SPEC §4).
import { createClient } from 'redis';
import type {
  Broker,
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
import { historyKeys, publishWithHistory, readHistory, type RunCommand } from './redis-history.js';
import { RedisPresence } from './redis-presence.js';
import { decodePayload, encodePayload } from './redis-wire.js';

export interface RedisBrokerOptions {
  /** node-redis URL, e.g. `redis://127.0.0.1:6379`. */
  url: string;
  /** Prepended to every Redis channel name. Defaults to `''`. */
  channelPrefix?: string;
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

export type RedisClient = ReturnType<typeof createClient>;

export interface RedisBrokerCounters {
  /** Payloads that were not django_sse arrays and were delivered raw. */
  badPayloads: number;
  /** Times the subscribing connection came back after a loss. */
  reconnects: number;
}

export class RedisBroker implements Broker, BrokerHealth, BrokerHistory, BrokerPresence, HistoryLength {
  readonly name = 'redis';
  readonly counters: RedisBrokerCounters = { badPayloads: 0, reconnects: 0 };
  /** The publishing connection; also usable for commands (history, sessions). */
  readonly client: RedisClient;
  private readonly subscriber: RedisClient;
  private readonly prefix: string;
  private readonly logger: Logger;
  private readonly healthListeners = new Set<(healthy: boolean) => void>();
  private healthy = false;
  private everReady = false;
  private closed = false;
  private readonly run: RunCommand;
  /** Channel → the node-redis listener of its subscription (see unsubscribe). */
  private readonly onMessage = new Map<string, (message: string) => void>();
  /** Channel → its last SUBSCRIBE/UNSUBSCRIBE, which the next one waits for (see serially). */
  private readonly channelOps = new Map<string, Promise<void>>();
  private readonly presenceTtl: number;
  private readonly presences = new Set<RedisPresence>();

  constructor(options: RedisBrokerOptions) {
    this.prefix = options.channelPrefix ?? '';
    this.logger = options.logger ?? silentLogger;
    const maxDelay = options.maxReconnectDelay ?? 2000;
    this.presenceTtl = options.presenceTtl ?? 15_000;
    this.client = createClient({
      url: options.url,
      // A command must fail at once while Redis is away, never wait in the
      // offline queue to be sent after the caller was told it failed.
      disableOfflineQueue: true,
      socket: {
        connectTimeout: 5000,
        // Exponential backoff with jitter, capped, forever: the hub must come
        // back by itself when Redis does (SPEC §7 "Broker faults").
        reconnectStrategy: (retries) =>
          Math.min(50 * 2 ** Math.min(retries, 10), maxDelay) + Math.floor(Math.random() * 50),
      },
    });
    // The subscriber keeps the offline queue: a SUBSCRIBE made while Redis is
    // down is sent once it is back (SPEC §2: such a stream starts receiving then).
    this.subscriber = this.client.duplicate({ disableOfflineQueue: false });
    this.run = (args) => this.client.sendCommand(args);
    // Without 'error' listeners node-redis errors would kill the process.
    this.client.on('error', (err: unknown) => this.logger.debug('redis publisher error', { error: String(err) }));
    this.subscriber.on('error', (err: unknown) => this.logger.debug('redis subscriber error', { error: String(err) }));
    this.subscriber.on('ready', () => {
      if (this.everReady) this.counters.reconnects++;
      this.everReady = true;
    });
    // Health is both connections being ready (see isHealthy); re-read it on
    // every state change of either, so listeners hear each transition once.
    for (const client of [this.client, this.subscriber]) {
      for (const event of ['ready', 'end', 'reconnecting', 'error'] as const)
        client.on(event, () => this.updateHealth());
    }
    const connect = (client: RedisClient, role: string): void => {
      client
        .connect()
        .catch((err: unknown) => this.logger.warn(`redis ${role} could not connect`, { error: String(err) }));
    };
    connect(this.client, 'publisher');
    connect(this.subscriber, 'subscriber');
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

  /** Resolves once both connections are ready (for tests and start-up checks). */
  async ready(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(this.client.isReady && this.subscriber.isReady)) {
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
      await this.client.publish(this.prefix + channel, encodePayload(event));
    } catch (err) {
      throw this.refused(err);
    }
  }

  /** History capability: id + XADD + PUBLISH in one Lua script (brokers/redis-history.ts). */
  async publishWithHistory(channel: string, event: SseEvent, limits: HistoryLimits): Promise<string> {
    this.assertConnected();
    try {
      return await publishWithHistory(this.run, this.prefix, channel, event, limits);
    } catch (err) {
      throw this.refused(err);
    }
  }

  async readHistory(
    after: ReadonlyMap<string, string>,
    limits: HistoryLimits,
    page?: HistoryPage,
  ): Promise<HistorySnapshot> {
    this.assertConnected();
    try {
      return await readHistory(this.run, this.prefix, after, limits, page);
    } catch (err) {
      throw new BrokerUnavailableError(this.name, `could not read history from redis: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /** History length capability: XLEN of each channel's stream, pipelined. */
  async historyLength(channels: readonly string[]): Promise<number[]> {
    this.assertConnected();
    const keys = historyKeys(this.prefix);
    const lengths = await Promise.all(channels.map((channel) => this.run(['XLEN', keys.stream(channel)])));
    return lengths.map(Number);
  }

  /** Presence capability: this process's record, refreshed until stop() (brokers/redis-presence.ts). */
  trackPresence(source: PresenceSource): PresenceHandle {
    const presence = new RedisPresence(source, {
      run: this.run,
      prefix: this.prefix,
      ttl: this.presenceTtl,
      logger: this.logger,
      ready: () => !this.closed && this.client.isReady,
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
  // sendEvent rejects at once while Redis is down (SPEC §7).
  private assertConnected(): void {
    if (this.closed) throw new BrokerUnavailableError(this.name, 'the redis broker is closed');
    if (!this.client.isReady) {
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
      listener(event);
    };
    this.onMessage.set(channel, onMessage);
    return this.serially(channel, () => this.subscriber.subscribe(this.prefix + channel, onMessage));
  }

  unsubscribe(channel: string): Promise<void> {
    const onMessage = this.onMessage.get(channel);
    this.onMessage.delete(channel);
    if (onMessage === undefined) return Promise.resolve();
    return this.serially(channel, () => this.subscriber.unsubscribe(this.prefix + channel, onMessage));
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
    await Promise.all([closeClient(this.client), closeClient(this.subscriber)]);
  }

  private updateHealth(): void {
    const healthy = !this.closed && this.subscriber.isReady && this.client.isReady;
    if (healthy === this.healthy) return;
    this.healthy = healthy;
    for (const listener of this.healthListeners) listener(healthy);
  }
}

async function closeClient(client: RedisClient): Promise<void> {
  if (!client.isOpen) return;
  try {
    await (client.isReady ? client.close() : client.destroy());
  } catch {
    client.destroy();
  }
}
