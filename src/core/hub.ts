// The hub: which local connections listen on which channel, one reference-
// counted broker subscription per channel, and the fan-out loop. Invariant:
// every event is framed once and the same Buffer goes to every subscriber;
// counters return to zero when nobody listens (STYLE §8). With history on
// (SPEC §7) it also owns replay-then-live: a resuming connection is
// subscribed live first, buffers, gets the replay, then only buffered events
// newer than the replay — so nothing is missed and nothing repeats.
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  hasHealth,
  hasHistory,
  type Broker,
  type BrokerHistory,
  type HistoryLimits,
  type HistorySnapshot,
} from './broker.js';
import { Connection, type CloseReason, type HeartbeatClock } from './connection.js';
import { BrokerUnavailableError, SseHubError } from './errors.js';
import { toEvent, type SseEvent } from './event.js';
import { assertChannelName } from './channel.js';
import { encodeFrame, encodeHeartbeatEvent, PING_FRAME } from './frame.js';
import {
  compareIdParts,
  compareIds,
  gapEvent,
  isHistoryId,
  maxId,
  MemoryHistory,
  NEWEST_ID,
  parseEventId,
  type EventIdParts,
} from './history.js';
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
  /** Events replayed from history to resuming connections and after broker outages. */
  eventsReplayed: number;
  /** `gap` events sent: a client asked for history that is no longer kept. */
  gapsSent: number;
}

export interface SendResult {
  /** The event's id, when it has one. */
  id?: string;
}

export interface AttachOptions {
  /** The id the client last saw (Last-Event-ID): with history on, missed events are replayed first. */
  lastEventId?: string;
}

/** A connection being resumed: live events are held here until its replay is written. */
interface Replay {
  connection: Connection;
  held: SseEvent[];
}

/** Events held while the hub catches up after a broker outage. */
type Held = [channel: string, event: SseEvent][];

/** Sub-ticks per half heartbeat over which heartbeat checks are spread. */
const HEARTBEAT_SLICES = 8;

/** Replay gives up on a resuming connection (it reconnects) once this many live events wait behind it. */
const MAX_HELD_EVENTS = 10_000;

export class Hub {
  readonly broker: Broker;
  readonly options: ResolvedHubOptions;
  private readonly listeners = new Map<string, Set<Connection>>();
  private readonly connections = new Set<Connection>();
  private readonly clock: HeartbeatClock = { tick: 0 };
  private heartbeatCache: { pass: number; frame: Buffer } | undefined;
  /** Connections by heartbeat slice: each sub-tick checks one slice (see heartbeat()). */
  private readonly slices: Set<Connection>[] = Array.from({ length: HEARTBEAT_SLICES }, () => new Set());
  private nextSlice = 0;
  private readonly heartbeatTimer: NodeJS.Timeout;
  private closing: Promise<void> | undefined;
  private counters = { eventsReceived: 0, framesWritten: 0, slowClientsClosed: 0, eventsReplayed: 0, gapsSent: 0 };
  /** History store (the broker's, or in memory); undefined when history is off. */
  private readonly history: BrokerHistory | undefined;
  private readonly limits: HistoryLimits | undefined;
  /** Channel → settled broker subscription, so a replay reads history only once live events flow. */
  private readonly subscriptions = new Map<string, Promise<void>>();
  /** Channel → resuming connections holding its live events. */
  private readonly replays = new Map<string, Set<Replay>>();
  /**
   * Resumed connections → the newest id their replay wrote. The history read
   * and the live PUBLISH travel on different Redis connections, so an event
   * can be in the replay and still arrive live afterwards; such a connection
   * skips live events up to its floor. Ids arrive in id order (one script
   * issues the id and publishes), so the first later event clears the floor.
   */
  private readonly floors = new Map<Connection, EventIdParts>();
  /** The same for the whole hub after a catch-up: live copies of caught-up events are dropped. */
  private catchUpFloor: EventIdParts | undefined;
  /** Greatest history id received from the broker (one pubsub connection: arrival order is id order). */
  private lastReceivedId: string | undefined;
  /** Channel → the last id issued when its subscription became live: where a catch-up starts at the latest. */
  private readonly marks = new Map<string, string>();
  /** Set while the broker is down or the hub is catching up; broker events wait here. */
  private held: Held | undefined;
  private catchingUp: Promise<void> | undefined;
  private catchUpAgain = false;
  private readonly caughtUp = new Set<() => void>();

  constructor(broker: Broker, options: ResolvedHubOptions) {
    this.broker = broker;
    this.options = options;
    if (options.history !== null) {
      this.limits = options.history;
      this.history = hasHistory(broker) ? broker : new MemoryHistory(broker);
      // After a broker outage, read what each channel missed from the shared
      // history (SPEC §7 "Broker faults"); only a shared history can have it.
      if (hasHistory(broker) && hasHealth(broker)) {
        broker.onHealthChange((healthy) => (healthy ? this.catchUp() : this.holdBrokerEvents()));
      }
    }
    // One timer for every connection. Each connection is checked every half
    // heartbeat and pinged when nothing was written to it since its last
    // check, so no stream is silent for as long as `heartbeat` ms; the checks
    // are spread over HEARTBEAT_SLICES sub-ticks so that 10k idle streams are
    // not all written in one burst that delays live events.
    const subTick = Math.max(1, Math.floor(options.heartbeat / 2 / HEARTBEAT_SLICES));
    this.heartbeatTimer = setInterval(() => this.heartbeat(), subTick);
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
    options: AttachOptions = {},
  ): Connection {
    if (this.closing) throw new SseHubError('SSE_ERR_HUB_CLOSED', 'the SSE hub is shutting down; reconnect later', 503);
    const connection = new Connection(req, res, channels, this.options, this.clock, (c) => this.detach(c));
    if (!connection.open) return connection; // the client left during writeHead
    this.connections.add(connection);
    (this.slices[this.nextSlice++ % HEARTBEAT_SLICES] as Set<Connection>).add(connection);
    // heartbeatEvent: the first event tells the page the interval (issue 7).
    if (this.options.heartbeatEvent) connection.write(this.heartbeatFrame());
    if (this.history !== undefined && options.lastEventId !== undefined) {
      void this.resume(connection, options.lastEventId, this.history);
      return connection;
    }
    for (const channel of channels) this.listenersOf(channel).add(connection);
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
      // With history on, the store issues the id (any id given is replaced).
      if (this.history !== undefined) {
        const id = await Promise.race([
          this.history.publishWithHistory(channel, event, this.limits as HistoryLimits),
          timeout,
        ]);
        return { id };
      }
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
      for (const resolve of this.caughtUp) resolve();
      for (const connection of [...this.connections]) connection.end('hub-closed');
      await this.broker.close();
    })();
    return this.closing;
  }

  /** An event from the broker: held while catching up after an outage, else delivered. */
  private received(channel: string, event: SseEvent): void {
    this.counters.eventsReceived++;
    if (this.held !== undefined) {
      this.held.push([channel, event]);
      return;
    }
    if (this.catchUpFloor !== undefined && event.id !== undefined) {
      const parts = parseEventId(event.id);
      if (parts !== undefined) {
        if (compareIdParts(parts, this.catchUpFloor) <= 0) return; // the catch-up delivered it already
        this.catchUpFloor = undefined;
      }
    }
    this.deliver(channel, event);
  }

  /**
   * Delivers one event: framed once, written to every listener. Resuming
   * connections are not listeners yet; they hold the event (once per event
   * per resuming connection, never per listener).
   */
  private deliver(channel: string, event: SseEvent): void {
    if (this.history !== undefined && isHistoryId(event.id)) this.lastReceivedId = event.id;
    if (this.replays.size !== 0) {
      const replays = this.replays.get(channel);
      if (replays !== undefined) for (const replay of replays) replay.held.push(event);
    }
    const set = this.listeners.get(channel);
    if (set === undefined || set.size === 0) return;
    const frame = encodeFrame(event);
    if (this.floors.size !== 0) {
      this.deliverPastFloors(set, frame, event);
      return;
    }
    let written = 0;
    for (const connection of set) {
      if (connection.write(frame)) written++;
    }
    this.counters.framesWritten += written;
  }

  /** deliver() while some resumed connections still have a floor: the slow path, short-lived. */
  private deliverPastFloors(set: Set<Connection>, frame: Buffer, event: SseEvent): void {
    const parts = parseEventId(event.id);
    if (parts !== undefined) {
      for (const [connection, floor] of this.floors) {
        if (compareIdParts(parts, floor) > 0) this.floors.delete(connection);
      }
    }
    let written = 0;
    for (const connection of set) {
      // An event without an sse-hub id is live-only: never part of a replay.
      if (parts !== undefined && this.floors.has(connection)) continue;
      if (connection.write(frame)) written++;
    }
    this.counters.framesWritten += written;
  }

  /** The listener set of `channel`, created (and subscribed at the broker) on first use. */
  private listenersOf(channel: string): Set<Connection> {
    let set = this.listeners.get(channel);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(channel, set);
      this.brokerSubscribe(channel);
    }
    return set;
  }

  /**
   * Resumes a connection from `lastEventId` (SPEC §7): subscribe live first
   * and hold its events, read history after the id in one atomic read, write
   * a `gap` event per channel whose history no longer reaches back, then the
   * missed events in id order, then the held events newer than the replay.
   */
  private async resume(connection: Connection, lastEventId: string, history: BrokerHistory): Promise<void> {
    const replay: Replay = { connection, held: [] };
    const { channels } = connection;
    for (const channel of channels) {
      this.listenersOf(channel);
      let set = this.replays.get(channel);
      if (set === undefined) this.replays.set(channel, (set = new Set()));
      set.add(replay);
    }
    const asked = parseEventId(lastEventId);
    const after = new Map(channels.map((channel) => [channel, asked === undefined ? NEWEST_ID : lastEventId]));
    try {
      await Promise.all(channels.map((channel) => this.subscriptions.get(channel)));
      // While the broker is down the read fails: retry with backoff as long
      // as the client waits, as a new subscription would (SPEC §2).
      let snapshot: HistorySnapshot | undefined;
      for (let attempt = 0; connection.open && snapshot === undefined; attempt++) {
        if (replay.held.length > MAX_HELD_EVENTS) break;
        try {
          snapshot = await history.readHistory(after, this.limits as HistoryLimits);
        } catch (err) {
          this.options.logger.debug('could not read history for a resuming client; retrying', { error: String(err) });
          await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, 2000)));
        }
      }
      // Events the hub itself still has to catch up on must reach the replay's
      // hold, not slip behind the connection once it listens.
      while (this.held !== undefined && connection.open && !this.closing) {
        await new Promise<void>((resolve) => this.caughtUp.add(resolve));
      }
      if (!connection.open) return;
      if (snapshot === undefined) {
        connection.end('server'); // too much waited behind it: it reconnects with the same id
        return;
      }
      let newest: EventIdParts | undefined = asked;
      const replayed: SseEvent[] = [];
      for (const channel of channels) {
        const kept = snapshot.channels.get(channel);
        if (kept === undefined) continue;
        if (asked === undefined || compareIds(lastEventId, kept.horizon) < 0) {
          this.counters.gapsSent++;
          connection.write(encodeFrame(gapEvent(channel, lastEventId, kept.oldestId)));
        }
        replayed.push(...kept.events);
      }
      replayed.sort((a, b) => compareIds(a.id as string, b.id as string));
      // The replay may be far larger than maxBufferedBytes: write it at the
      // client's pace (live events keep being held meanwhile).
      for (const event of replayed) {
        if (!(await this.paced(connection, replay))) return;
        connection.write(encodeFrame(event));
        newest = parseEventId(event.id);
        this.counters.eventsReplayed++;
      }
      // Then the held events newer than the replay. The loop re-reads the
      // hold after every pause, and from its last check to joining the
      // listeners nothing awaits, so no event can fall in between.
      for (let i = 0; i < replay.held.length; i++) {
        const event = replay.held[i] as SseEvent;
        const parts = parseEventId(event.id);
        // Events without an sse-hub id are live-only: never in the replay.
        if (parts === undefined || newest === undefined || compareIdParts(parts, newest) > 0) {
          if (!(await this.paced(connection, replay))) return;
          connection.write(encodeFrame(event));
          if (parts !== undefined) newest = parts;
        }
      }
      if (!connection.open) return;
      if (
        newest !== undefined &&
        (this.lastReceivedId === undefined ||
          compareIdParts(parseEventId(this.lastReceivedId) as EventIdParts, newest) < 0)
      ) {
        this.floors.set(connection, newest);
      }
      for (const channel of channels) this.listenersOf(channel).add(connection);
    } finally {
      for (const channel of channels) {
        const set = this.replays.get(channel);
        set?.delete(replay);
        if (set?.size === 0) this.replays.delete(channel);
        if (!connection.open) this.releaseIfIdle(channel);
      }
    }
  }

  /**
   * Waits while a resuming connection holds more than half its
   * maxBufferedBytes. False when it closed, or when too many live events
   * piled up behind it (it is ended and reconnects from where it got to).
   */
  private async paced(connection: Connection, replay: Replay): Promise<boolean> {
    const { res } = connection;
    while (connection.open && res.writableLength > this.options.maxBufferedBytes / 2) {
      if (replay.held.length > MAX_HELD_EVENTS) {
        connection.end('server');
        return false;
      }
      // Frames may go to the socket directly (Connection), so its 'drain'
      // counts too; the timer is a backstop, never the pace.
      const { socket } = res;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, 100);
        function done(): void {
          clearTimeout(timer);
          res.off('drain', done);
          res.off('close', done);
          socket?.off('drain', done);
          resolve();
        }
        res.on('drain', done);
        res.on('close', done);
        socket?.on('drain', done);
      });
    }
    return connection.open;
  }

  /** Drops the broker subscription of a channel nobody listens on or resumes on any more. */
  private releaseIfIdle(channel: string): void {
    const set = this.listeners.get(channel);
    if (set === undefined || set.size !== 0 || this.replays.has(channel)) return;
    this.listeners.delete(channel);
    if (!this.closing) this.brokerUnsubscribe(channel);
  }

  /** The broker went down: hold its events until the hub has caught up. */
  private holdBrokerEvents(): void {
    this.held ??= [];
  }

  /**
   * The broker is back: read every channel's history after the last id the
   * hub received (or the mark taken when it subscribed), deliver what was
   * missed in order, then the held events newer than that.
   */
  private catchUp(): void {
    if (this.held === undefined || this.closing) return;
    if (this.catchingUp !== undefined) {
      this.catchUpAgain = true;
      return;
    }
    this.catchingUp = this.runCatchUp().finally(() => {
      this.catchingUp = undefined;
      if (this.catchUpAgain) {
        this.catchUpAgain = false;
        this.catchUp();
      }
    });
  }

  private async runCatchUp(): Promise<void> {
    const history = this.history as BrokerHistory;
    const broker = this.broker as Broker & { isHealthy(): boolean };
    for (let attempt = 0; this.held !== undefined && !this.closing && broker.isHealthy(); attempt++) {
      const after = new Map<string, string>();
      for (const channel of this.listeners.keys()) {
        let from = this.marks.get(channel);
        if (this.lastReceivedId !== undefined)
          from = from === undefined ? this.lastReceivedId : maxId(from, this.lastReceivedId);
        if (from !== undefined) after.set(channel, from);
      }
      let snapshot: HistorySnapshot;
      try {
        snapshot = await history.readHistory(after, this.limits as HistoryLimits);
      } catch (err) {
        this.options.logger.debug('could not catch up from history; retrying', { error: String(err) });
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, 2000)));
        continue;
      }
      if (!broker.isHealthy()) return; // down again: keep holding; the next recovery retries
      const missed: [string, SseEvent][] = [];
      for (const [channel, kept] of snapshot.channels) for (const event of kept.events) missed.push([channel, event]);
      missed.sort((a, b) => compareIds(a[1].id as string, b[1].id as string));
      const held = this.held;
      this.held = undefined;
      let newest: EventIdParts | undefined;
      for (const [channel, event] of missed) {
        this.deliver(channel, event);
        newest = parseEventId(event.id);
      }
      this.counters.eventsReplayed += missed.length;
      if (missed.length > 0)
        this.options.logger.info(`caught up ${missed.length} events missed while the broker was away`);
      for (const [channel, event] of held) {
        const parts = parseEventId(event.id);
        if (parts === undefined || newest === undefined || compareIdParts(parts, newest) > 0) {
          this.deliver(channel, event);
          if (parts !== undefined) newest = parts;
        }
      }
      // The history read and the live PUBLISH race on two connections: caught-up
      // events may still arrive live, and must not be delivered twice.
      if (newest !== undefined) this.catchUpFloor = newest;
      for (const resolve of this.caughtUp) resolve();
      this.caughtUp.clear();
    }
  }

  private detach(connection: Connection): void {
    if (!this.connections.delete(connection)) return;
    for (const slice of this.slices) slice.delete(connection);
    this.floors.delete(connection);
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
      if (set.size === 0 && !this.replays.has(channel)) {
        this.listeners.delete(channel);
        if (!this.closing) this.brokerUnsubscribe(channel);
      }
    }
  }

  private brokerSubscribe(channel: string): void {
    const subscribed = this.broker
      .subscribe(channel, (event) => this.received(channel, event))
      .catch((err: unknown) => {
        // The broker keeps the subscription and replays it on reconnect; a
        // failure here is logged, never surfaced on the stream.
        this.options.logger.warn(`could not subscribe to channel "${channel}" at the ${this.broker.name} broker`, {
          error: String(err),
        });
      });
    this.subscriptions.set(channel, subscribed);
    if (this.held === undefined && this.history !== undefined && hasHealth(this.broker)) {
      // Where a catch-up for this channel may start: every event published
      // after this read reaches the live subscription.
      void subscribed
        .then(() => this.history?.readHistory(new Map(), this.limits as HistoryLimits))
        .then((snapshot) => {
          if (snapshot !== undefined && this.listeners.has(channel)) this.marks.set(channel, snapshot.lastId);
        })
        .catch(() => undefined);
    }
  }

  private brokerUnsubscribe(channel: string): void {
    this.subscriptions.delete(channel);
    this.marks.delete(channel);
    this.broker.unsubscribe(channel).catch((err: unknown) => {
      this.options.logger.warn(`could not unsubscribe from channel "${channel}"`, { error: String(err) });
    });
  }

  private heartbeat(): void {
    // Writes after this sub-tick are stamped tick + 1; a connection of this
    // slice was last checked HEARTBEAT_SLICES sub-ticks ago, so a stamp of at
    // most tick - HEARTBEAT_SLICES means nothing was written since.
    const tick = this.clock.tick++;
    const slice = this.slices[tick % HEARTBEAT_SLICES] as Set<Connection>;
    let frame: Buffer | undefined;
    for (const connection of slice) {
      if (connection.stamp <= tick - HEARTBEAT_SLICES) connection.write((frame ??= this.heartbeatFrame()));
    }
  }

  /**
   * `: ping`, or with heartbeatEvent the `heartbeat` event: built at most once
   * per pass over all slices (half a heartbeat), shared by every connection.
   */
  private heartbeatFrame(): Buffer {
    if (!this.options.heartbeatEvent) return PING_FRAME;
    const pass = Math.floor(this.clock.tick / HEARTBEAT_SLICES);
    if (this.heartbeatCache?.pass !== pass) {
      this.heartbeatCache = { pass, frame: encodeHeartbeatEvent(this.options.heartbeat, Date.now()) };
    }
    return this.heartbeatCache.frame;
  }
}

export type { CloseReason };
