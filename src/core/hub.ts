// The hub: which local connections listen on which channel, one reference-
// counted broker subscription per channel, and the fan-out loop. Invariant:
// every event is framed once and the same Buffer goes to every subscriber;
// counters return to zero when nobody listens (STYLE §8).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hasHealth, type Broker } from './broker.js';
import { Connection, type CloseReason, type HeartbeatClock } from './connection.js';
import { BrokerUnavailableError, SseHubError } from './errors.js';
import { toEvent, type SseEvent } from './event.js';
import { assertChannelName } from './channel.js';
import { encodeFrame } from './frame.js';
import type { ResolvedHubOptions } from './options.js';

export interface HubStats {
  /** Open SSE connections. */
  connections: number;
  /** Channels with at least one local listener (= broker subscriptions). */
  channels: number;
  /** Events received from the broker. */
  eventsReceived: number;
  /** Frames written to connections (one event to N listeners counts N). */
  framesWritten: number;
  /** Connections closed because their unsent bytes passed maxBufferedBytes. */
  slowClientsClosed: number;
}

export interface SendResult {
  /** The event's id, when it has one. */
  id?: string;
}

export interface AttachOptions {
  /** Reserved for history replay: the id the client last saw. */
  lastEventId?: string;
}

export class Hub {
  readonly broker: Broker;
  readonly options: ResolvedHubOptions;
  private readonly listeners = new Map<string, Set<Connection>>();
  private readonly connections = new Set<Connection>();
  private readonly clock: HeartbeatClock = { tick: 0 };
  private readonly heartbeatTimer: NodeJS.Timeout;
  private closing: Promise<void> | undefined;
  private counters = { eventsReceived: 0, framesWritten: 0, slowClientsClosed: 0 };

  constructor(broker: Broker, options: ResolvedHubOptions) {
    this.broker = broker;
    this.options = options;
    // One timer for every connection, ticking at half the heartbeat: a stream
    // not written to for one full tick is pinged, so no stream is silent for
    // as long as `heartbeat` ms.
    this.heartbeatTimer = setInterval(() => this.heartbeat(), Math.max(1, Math.floor(options.heartbeat / 2)));
    this.heartbeatTimer.unref();
  }

  /** Whether events can flow: the broker's subscription connection is up. */
  isHealthy(): boolean {
    return this.closing === undefined && (!hasHealth(this.broker) || this.broker.isHealthy());
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  stats(): HubStats {
    return { connections: this.connections.size, channels: this.listeners.size, ...this.counters };
  }

  /**
   * Opens an SSE stream on `res` listening on `channels`. Channels must already
   * be valid (parseChannelList / assertChannelName): the hub trusts them.
   */
  attach(
    req: IncomingMessage,
    res: ServerResponse,
    channels: readonly string[],
    _options: AttachOptions = {},
  ): Connection {
    if (this.closing) throw new SseHubError('SSE_ERR_HUB_CLOSED', 'the SSE hub is shutting down; reconnect later', 503);
    const connection = new Connection(req, res, channels, this.options, this.clock, (c) => this.detach(c));
    if (!connection.open) return connection; // the client left during writeHead
    this.connections.add(connection);
    for (const channel of channels) {
      let set = this.listeners.get(channel);
      if (set === undefined) {
        set = new Set();
        this.listeners.set(channel, set);
        this.brokerSubscribe(channel);
      }
      set.add(connection);
    }
    return connection;
  }

  /** django_sse's send_event: validates, then publishes through the broker. */
  sendEvent(type: string, data: unknown, channel: string, options: { id?: string } = {}): Promise<SendResult> {
    try {
      assertChannelName(channel);
      return this.publish(channel, toEvent(type, data, options.id));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Publishes a validated event; rejects with BrokerUnavailableError after sendTimeout ms. */
  async publish(channel: string, event: SseEvent): Promise<SendResult> {
    if (this.closing)
      throw new SseHubError('SSE_ERR_HUB_CLOSED', 'the SSE hub is closed; sendEvent is no longer possible', 503);
    const { broker } = this;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new BrokerUnavailableError(
              broker.name,
              `the ${broker.name} broker did not accept the event on channel "${channel}" within ${this.options.sendTimeout} ms`,
            ),
          ),
        this.options.sendTimeout,
      );
    });
    try {
      await Promise.race([broker.publish(channel, event), timeout]);
    } finally {
      clearTimeout(timer);
    }
    return event.id === undefined ? {} : { id: event.id };
  }

  /** Ends every stream cleanly, stops the heartbeat and closes the broker. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.heartbeatTimer);
      for (const connection of [...this.connections]) connection.end('hub-closed');
      await this.broker.close();
    })();
    return this.closing;
  }

  /** Delivers one event from the broker: framed once, written to every listener. */
  private deliver(channel: string, event: SseEvent): void {
    this.counters.eventsReceived++;
    const set = this.listeners.get(channel);
    if (set === undefined || set.size === 0) return;
    const frame = encodeFrame(event);
    let written = 0;
    for (const connection of set) {
      if (connection.write(frame)) written++;
    }
    this.counters.framesWritten += written;
  }

  private detach(connection: Connection): void {
    if (!this.connections.delete(connection)) return;
    if (connection.closeReason === 'slow') {
      this.counters.slowClientsClosed++;
      this.options.logger.info('closed a slow SSE client', {
        channels: connection.channels,
        maxBufferedBytes: this.options.maxBufferedBytes,
      });
    }
    for (const channel of connection.channels) {
      const set = this.listeners.get(channel);
      if (set === undefined) continue;
      set.delete(connection);
      if (set.size === 0) {
        this.listeners.delete(channel);
        if (!this.closing) this.brokerUnsubscribe(channel);
      }
    }
  }

  private brokerSubscribe(channel: string): void {
    this.broker
      .subscribe(channel, (event) => this.deliver(channel, event))
      .catch((err: unknown) => {
        // The broker keeps the subscription and replays it on reconnect; a
        // failure here is logged, never surfaced on the stream.
        this.options.logger.warn(`could not subscribe to channel "${channel}" at the ${this.broker.name} broker`, {
          error: String(err),
        });
      });
  }

  private brokerUnsubscribe(channel: string): void {
    this.broker.unsubscribe(channel).catch((err: unknown) => {
      this.options.logger.warn(`could not unsubscribe from channel "${channel}"`, { error: String(err) });
    });
  }

  private heartbeat(): void {
    const tick = this.clock.tick++;
    for (const connection of this.connections) {
      if (connection.stamp < tick) connection.ping();
    }
  }
}

export type { CloseReason };
