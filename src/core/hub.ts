// The hub: which local connections listen on which channel, one reference-
// counted broker subscription per channel, and the fan-out loop. Invariant:
// every event is framed once and the same Buffer goes to every subscriber
// (except, on a broker whose ids are ordered per channel only, to streams on
// several channels: core/positions.ts); counters return to zero when nobody
// listens. With history on, resuming a
// connection is core/replay.ts and catching up after a broker outage is
// core/catch-up.ts; heartbeats are core/heartbeat.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  hasChannelIds,
  hasHealth,
  hasHistory,
  hasHistoryLength,
  type Broker,
  type BrokerHistory,
  type ChannelPresence,
  type HistoryLimits,
} from './broker.js';
import { CatchUp } from './catch-up.js';
import { Connection, holdCorks, releaseCorks } from './connection.js';
import { BrokerUnavailableError, SseHubError } from './errors.js';
import { toEvent, type SseEvent } from './event.js';
import { assertChannelName } from './channel.js';
import { encodeFrame, sharedFrame } from './frame.js';
import { Heartbeat } from './heartbeat.js';
import { CHANNEL_CACHE_BYTES, HistoryCache } from './history-cache.js';
import { READS_IN_FLIGHT, ReadLimiter } from './history-read.js';
import { MemoryHistory, parseEventId, type EventIdParts } from './history.js';
import type { ResolvedHubOptions } from './options.js';
import { ChannelPositions, EventFrames } from './positions.js';
import { HubPresence, type ChannelSummary, type PresenceOverview } from './presence.js';
import { RefusalLog, type RefusalKind } from './refusals.js';
import { Replays } from './replay.js';
import { jitteredRetryMs } from './retry.js';

/**
 * Socket writes the fan-out makes in one event-loop turn before it yields.
 * One read from the broker can hold hundreds of events; written to 10,000
 * listeners each, that is seconds of CPU in one turn on a busy machine, and
 * nothing else runs meanwhile: not SIGTERM, not the drain's timers. Nor new
 * connections: Node (libuv 1.45 and later) accepts one connection per
 * event-loop turn, so during a reconnect storm the length of a turn is what
 * paces the crowd's return. Past this budget the events wait in the hub's
 * backlog, in order, for the next turn; and an event for more listeners than
 * the turn has left is written a slice of them per turn (see SplitFanOut).
 */
export const WRITES_PER_TURN = 250;

/**
 * While the backlog is worked off, turn after turn, sockets stay corked until
 * it is empty, or for this many milliseconds at most: a hub that is behind
 * then sends each socket many events per syscall, as one that wrote a whole
 * broker read in one turn would (a socket also sends once it holds 64 KiB).
 * Flushing every few events instead is what keeps a hub behind: at 10,000
 * listeners of 100 events/s, two events per syscall delivered a seventh of
 * what the ceiling server delivers (bench/RESULTS.md, storm-live-10k).
 */
export const FLUSH_AFTER_MS = 500;

/**
 * Events the backlog holds at most. Past it the fan-out no longer yields (the
 * broker's socket and its output buffer hold the rest, as without a backlog),
 * so a hub that stays behind cannot grow its memory without bound — except
 * while closing: then yielding wins, and what no open stream needs is dropped.
 */
export const MAX_BACKLOG_EVENTS = 10_000;

/** An event written to its listeners over several turns, a slice per turn, before any later event. */
interface SplitFanOut {
  frame: Buffer;
  /** The listeners as they were when it was delivered: one that joins meanwhile had it from its replay. */
  targets: Connection[];
  next: number;
}

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
  /** Replays (resumes with Last-Event-ID) running now. */
  replaysActive: number;
  /** Resumes that had to wait for a slot because maxReplays were running (they wait, holding their socket). */
  replaysQueued: number;
  /** Resumes waiting now for a slot. */
  replaysWaiting: number;
  /** Replays closed because the client took nothing for replayStallTimeout ms (also counted as slow clients). */
  replaysStalled: number;
  /** Replay reads answered from the history cache (core/history-cache.ts), without a broker read. */
  historyCacheHits: number;
  /** Replay reads the history cache passed on to the broker whole. */
  historyCacheMisses: number;
  /** Page reads the history cache made to start or extend a channel's run. */
  historyCacheFillReads: number;
  /** Bytes the history cache holds now (approximate). */
  historyCacheBytes: number;
}

export interface SendResult {
  /** The event's id, when it has one. */
  id?: string;
}

export interface AttachOptions {
  /** The id the client last saw (Last-Event-ID): with history on, missed events are replayed first. */
  lastEventId?: string;
  /** The user the connection belongs to (session mode): counted in presence and presence events. */
  user?: string;
  /** Receives events but is left out of presence (the admin dashboard's tail). Defaults to false. */
  observer?: boolean;
}

export class Hub {
  readonly broker: Broker;
  readonly options: ResolvedHubOptions;
  private readonly listeners = new Map<string, Set<Connection>>();
  private readonly connections = new Set<Connection>();
  private readonly heartbeat: Heartbeat;
  private closing: Promise<void> | undefined;
  private counters = { eventsReceived: 0, framesWritten: 0, slowClientsClosed: 0, replaysQueued: 0 };
  /** Broker events waiting for the next turn, in arrival order (see WRITES_PER_TURN); taken entries are cleared. */
  private backlog: ({ channel: string; event: SseEvent; id: EventIdParts | undefined } | undefined)[] = [];
  private backlogHead = 0;
  /** Resumes waiting for one of the maxReplays slots, first come first served → their Last-Event-ID. */
  private readonly replaysWaiting = new Map<Connection, string>();
  /** Socket writes made since the last yield (or since a few calm turns). */
  private turnWrites = 0;
  /** The event being written a slice per turn, if any. */
  private split: SplitFanOut | undefined;
  /** True while this hub keeps sockets corked across turns (its backlog is being worked off). */
  private holdingCorks = false;
  /** When the corks were last taken (see FLUSH_AFTER_MS), by performance.now(). */
  private heldAt = 0;
  private turnScheduled = false;
  /** History store (the broker's, or in memory); undefined when history is off. */
  private readonly history: BrokerHistory | undefined;
  private readonly limits: HistoryLimits | undefined;
  /** Channel → settled broker subscription, so a replay reads history only once live events flow. */
  private readonly subscriptions = new Map<string, Promise<void>>();
  /** Greatest history id received from the broker (one pubsub connection: arrival order is id order). */
  private lastReceived: { id: string; parts: EventIdParts } | undefined;
  /** Each stream's position per channel, when the broker's ids are ordered per channel only (Redis Cluster). */
  private readonly positions: ChannelPositions | undefined;
  /** Resuming connections; undefined when history is off. */
  private readonly replays: Replays | undefined;
  /** Catch-up after broker outages; only with a shared history and a broker that reports its health. */
  private readonly catchUp: CatchUp | undefined;
  /** What resumes read the shared history through; same condition as catchUp. */
  private readonly historyCache: HistoryCache | undefined;
  /** Who is connected, here and in every process (core/presence.ts); changes on attach/detach only. */
  private readonly presenceState: HubPresence;
  /** Channel → events received, for the dashboard's events/s (one Map update per event, never per listener). */
  private readonly channelEvents = new Map<string, number>();
  /** Recent refusals (slow clients, caps, 401/403) for the admin dashboard. */
  readonly refusals = new RefusalLog();

  constructor(broker: Broker, options: ResolvedHubOptions) {
    this.broker = broker;
    this.options = options;
    this.presenceState = new HubPresence(broker, options, (channel, event) => this.publish(channel, event));
    if (options.history !== null) {
      const limits = (this.limits = options.history);
      const history = (this.history = hasHistory(broker) ? broker : new MemoryHistory(broker));
      const limiter = new ReadLimiter(READS_IN_FLIGHT);
      const positions = (this.positions = hasChannelIds(broker) ? new ChannelPositions(broker) : undefined);
      // Resumes on one channel share one read of its recent history (docs/performance.md#the-history-cache).
      const cache = (this.historyCache =
        hasHistory(broker) && hasHealth(broker) && options.historyCacheBytes > 0
          ? new HistoryCache(
              broker,
              { flowing: () => broker.isHealthy() && this.catchUp?.queueing !== true },
              {
                orderedIds: positions === undefined,
                limiter,
                maxBytes: options.historyCacheBytes,
                maxChannelBytes: Math.min(CHANNEL_CACHE_BYTES, options.historyCacheBytes),
              },
            )
          : undefined);
      this.replays = new Replays(
        {
          subscribe: (channel) => {
            this.listenersOf(channel);
            return this.subscriptions.get(channel) as Promise<void>;
          },
          listen: (connection, channel) => this.listenersOf(channel).add(connection),
          release: (channel) => this.releaseIfIdle(channel),
          lastReceivedId: () => this.lastReceived?.parts,
          whenCaughtUp: () => (this.catchUp?.queueing === true ? this.catchUp.whenCaughtUp() : undefined),
          closed: () => this.closing !== undefined,
        },
        {
          history: cache ?? history,
          limits,
          logger: options.logger,
          stallTimeout: options.replayStallTimeout,
          // With the cache, only its broker reads take a slot (see HistoryCacheOptions.limiter).
          limiter: cache === undefined ? limiter : undefined,
          positions,
        },
      );
      // After a broker outage, read what each channel missed from the shared
      // history; only a shared history can have it.
      if (hasHistory(broker) && hasHealth(broker)) {
        const catchUp = (this.catchUp = new CatchUp(
          {
            listenedChannels: () => this.listeners.keys(),
            lastReceivedId: () => this.lastReceived?.id,
            lastDeliveredOn: positions === undefined ? undefined : (channel) => positions.lastDelivered(channel),
            deliver: (channel, event, id) => this.deliver(channel, event, id),
            brokerHealthy: () => broker.isHealthy(),
            closed: () => this.closing !== undefined,
          },
          broker,
          limits,
          options.logger,
          limiter,
        ));
        broker.onHealthChange((healthy) => {
          if (healthy) return catchUp.brokerUp();
          catchUp.brokerDown();
          cache?.brokerDown();
        });
      }
    }
    this.heartbeat = new Heartbeat(options);
  }

  /** Whether events can flow: the broker's subscription connection is up. */
  isHealthy(): boolean {
    return this.closing === undefined && (!hasHealth(this.broker) || this.broker.isHealthy());
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  stats(): HubStats {
    return {
      connections: this.connections.size,
      channels: this.listeners.size,
      ...this.counters,
      eventsReplayed: (this.replays?.eventsReplayed ?? 0) + (this.catchUp?.eventsCaughtUp ?? 0),
      gapsSent: this.replays?.gapsSent ?? 0,
      replaysActive: this.replays?.active ?? 0,
      replaysWaiting: this.replaysWaiting.size,
      replaysStalled: this.replays?.replaysStalled ?? 0,
      historyCacheHits: this.historyCache?.stats.hits ?? 0,
      historyCacheMisses: this.historyCache?.stats.misses ?? 0,
      historyCacheFillReads: this.historyCache?.stats.fillReads ?? 0,
      historyCacheBytes: this.historyCache?.stats.bytes ?? 0,
    };
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
    const connection = new Connection(req, res, channels, this.options, this.heartbeat.ticks, (c) => this.detach(c));
    if (!connection.open) return connection; // the client left during writeHead
    this.connections.add(connection);
    this.heartbeat.add(connection);
    this.presenceState.attached(connection, options);
    // heartbeatEvent: the first event tells the page the interval.
    if (this.options.heartbeatEvent) connection.write(this.heartbeat.frame());
    if (this.replays !== undefined && options.lastEventId !== undefined) {
      if (this.replays.active >= this.options.maxReplays) {
        // A replay holds a page and up to maxBufferedBytes / 2 at the client's
        // pace, so only maxReplays run. The others wait their turn here, in
        // order, holding their socket and nothing else (so maxConnections
        // bounds them): sent away, they would come back later, older, and
        // find their Last-Event-ID gone from a busy channel's history.
        this.counters.replaysQueued++;
        this.replaysWaiting.set(connection, options.lastEventId);
        return connection;
      }
      this.startReplay(connection, options.lastEventId);
      return connection;
    }
    this.positions?.start(connection);
    for (const channel of channels) this.listenersOf(channel).add(connection);
    return connection;
  }

  /** Runs one replay; when it ends, the first waiting resume takes its slot. */
  private startReplay(connection: Connection, lastEventId: string): void {
    const replays = this.replays as Replays;
    void replays.resume(connection, lastEventId).finally(() => {
      for (const [waiting, id] of this.replaysWaiting) {
        if (this.closing !== undefined || replays.active >= this.options.maxReplays) break;
        this.replaysWaiting.delete(waiting);
        if (waiting.open) this.startReplay(waiting, id);
      }
    });
  }

  /**
   * Open connections on `channel` in every process sharing the broker, and
   * the distinct users among them (session mode). Other processes are seen as
   * of their last presence refresh (about a second).
   */
  async presence(channel: string): Promise<ChannelPresence> {
    return this.presenceState.get(assertChannelName(channel));
  }

  /** Every channel with open connections in any process sharing the broker, busiest first. */
  async channels(): Promise<ChannelSummary[]> {
    return (await this.presenceOverview()).channels;
  }

  /**
   * channels(), and how many live processes share the broker's presence (this
   * one included). `localOnly`: this process alone, without asking the broker.
   */
  presenceOverview(options: { localOnly?: boolean } = {}): Promise<PresenceOverview> {
    return this.presenceState.overview(options.localOnly === true);
  }

  /** Events received per channel this process listens on, since it started listening. */
  channelEventCounts(): ReadonlyMap<string, number> {
    return this.channelEvents;
  }

  /** Events kept in history per channel, or undefined when history is off or cannot tell. */
  async historyLengths(channels: readonly string[]): Promise<number[] | undefined> {
    const history = this.history;
    if (history === undefined || !hasHistoryLength(history)) return undefined;
    return history.historyLength(channels);
  }

  /** Notes a refusal for the admin dashboard (bounded: see core/refusals.ts). */
  recordRefusal(kind: RefusalKind, detail: string): void {
    this.refusals.record(kind, detail);
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

  /**
   * Ends every stream cleanly — spread over drainTime ms, each with a
   * jittered `retry:`, so their reconnects do not land at once — then stops
   * the heartbeat and closes the broker. Streams not yet ended keep receiving
   * events meanwhile. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.presenceState.close();
      this.catchUp?.close();
      await this.drain();
      this.heartbeat.stop();
      this.historyCache?.close();
      await this.broker.close();
    })();
    return this.closing;
  }

  /** Ends the open streams in even batches over drainTime ms (at most one batch per 10 ms). */
  private async drain(): Promise<void> {
    const streams = [...this.connections];
    const { drainTime, retry } = this.options;
    const batches = Math.max(1, Math.min(streams.length, Math.floor(drainTime / 10)));
    for (let batch = 0; batch < batches; batch++) {
      if (batch > 0) await new Promise((resolve) => setTimeout(resolve, drainTime / batches));
      const end = Math.floor(((batch + 1) * streams.length) / batches);
      for (let i = Math.floor((batch * streams.length) / batches); i < end; i++) {
        (streams[i] as Connection).end('hub-closed', jitteredRetryMs(retry));
      }
    }
  }

  /**
   * An event from the broker. Its id is parsed here, once, and travels with
   * it. The history cache follows the broker as events arrive, not as the
   * fan-out gets to them: a replay answered from it may then be ahead of
   * live delivery, which the replay's id floor already handles, instead of
   * waiting on a fan-out that is behind. Catch-up may take the event (queued
   * during an outage, or a copy of an event it delivered already); else it is
   * delivered.
   */
  private received(channel: string, event: SseEvent): void {
    const id = parseEventId(event.id);
    this.historyCache?.received(channel, event, id);
    const waiting = this.backlog.length - this.backlogHead;
    if (waiting === 0 && this.split === undefined && this.turnWrites < WRITES_PER_TURN) {
      this.process(channel, event, id);
      return;
    }
    this.backlog.push({ channel, event, id });
    this.holdCorks();
    if (waiting + 1 > MAX_BACKLOG_EVENTS && this.closing === undefined) {
      // Far behind: back-pressure onto the broker's socket, as without a backlog.
      while (this.backlog.length - this.backlogHead > MAX_BACKLOG_EVENTS) this.processNext();
    }
    this.scheduleTurn();
  }

  private processNext(): void {
    const next = this.backlog[this.backlogHead] as { channel: string; event: SseEvent; id: EventIdParts | undefined };
    this.backlog[this.backlogHead++] = undefined;
    this.process(next.channel, next.event, next.id);
  }

  /** Resets the budget on the next turn, then goes on with the backlog. */
  private scheduleTurn(): void {
    if (this.turnScheduled) return;
    this.turnScheduled = true;
    setImmediate(() => {
      this.turnScheduled = false;
      this.turnWrites = 0;
      if (this.closing !== undefined && this.connections.size === 0) {
        this.backlogHead = this.backlog.length; // nobody left to write to: close() wins
        this.split = undefined;
      }
      this.writeSplit(WRITES_PER_TURN);
      while (this.backlogHead < this.backlog.length && this.turnWrites < WRITES_PER_TURN) this.processNext();
      if (this.backlogHead < this.backlog.length || this.split !== undefined) this.scheduleTurn();
      else {
        this.releaseCorks();
        if (this.backlogHead !== 0) {
          this.backlog = [];
          this.backlogHead = 0;
        }
      }
    });
  }

  private holdCorks(): void {
    if (this.holdingCorks) return;
    this.holdingCorks = true;
    this.heldAt = performance.now();
    holdCorks();
  }

  /** Sends what the sockets hold since holdCorks() (no-op when not holding). */
  private releaseCorks(): void {
    if (!this.holdingCorks) return;
    this.holdingCorks = false;
    releaseCorks();
  }

  /** One broker event, in arrival order: counted, then caught up on or delivered. */
  private process(channel: string, event: SseEvent, id: EventIdParts | undefined): void {
    this.counters.eventsReceived++;
    this.channelEvents.set(channel, (this.channelEvents.get(channel) ?? 0) + 1);
    if (this.catchUp?.intercept(channel, event, id) === true) return;
    this.deliver(channel, event, id);
  }

  /**
   * Delivers one event: framed once, written to every listener. Resuming
   * connections are not listeners yet; their replay queues the event.
   */
  private deliver(channel: string, event: SseEvent, id: EventIdParts | undefined): void {
    // Catch-up delivers outside the turns: an event being split goes out whole first, keeping order.
    if (this.split !== undefined) this.writeSplit(Infinity);
    const { replays, positions } = this;
    if (positions !== undefined && id !== undefined && positions.isCopy(channel, id)) return;
    if (replays !== undefined) {
      if (id !== undefined) this.lastReceived = { id: event.id as string, parts: id };
      replays.queue(channel, event, id);
    }
    const set = this.listeners.get(channel);
    if (set === undefined || set.size === 0) return;
    if (positions !== undefined && id !== undefined) {
      this.deliverPositioned(set, channel, event, id, positions);
      return;
    }
    // With history, the event may be replayed later from the cache: its frame is kept with it.
    const frame = replays === undefined ? encodeFrame(event) : sharedFrame(event);
    if (replays !== undefined && replays.floors.size !== 0 && id !== undefined) {
      this.deliverPastFloors(set, frame, id, replays);
      return;
    }
    if (set.size > WRITES_PER_TURN - this.turnWrites) {
      this.startSplit(frame, [...set]);
      return;
    }
    let written = 0;
    for (const connection of set) {
      if (connection.write(frame)) written++;
    }
    this.counters.framesWritten += written;
    this.wrote(set.size);
  }

  /**
   * Writes `frame` to `targets` over as many turns as the budget needs, so a
   * turn stays short however many listen (see WRITES_PER_TURN); the events
   * after it wait in the backlog meanwhile, and the sockets stay corked.
   */
  private startSplit(frame: Buffer, targets: Connection[]): void {
    this.split = { frame, targets, next: 0 };
    this.holdCorks();
    this.writeSplit(WRITES_PER_TURN);
  }

  /** Goes on with the split event, up to `budget` writes in this turn in all. */
  private writeSplit(budget: number): void {
    const split = this.split;
    if (split === undefined) return;
    const { frame, targets } = split;
    const end = Math.min(targets.length, split.next + Math.max(0, budget - this.turnWrites));
    let written = 0;
    for (let i = split.next; i < end; i++) {
      if ((targets[i] as Connection).write(frame)) written++;
    }
    this.counters.framesWritten += written;
    const writes = end - split.next;
    split.next = end;
    if (end === targets.length) this.split = undefined;
    this.wrote(writes);
  }

  /**
   * Counts `writes` against this turn's budget. The first write of a turn
   * schedules the reset (one setImmediate per busy turn, not per event): a
   * budget that carried over calm turns forced a yield every few events at
   * full load, delaying one event a whole loop turn each time (the max-1k
   * bench lost about a fifth of its throughput to it).
   */
  private wrote(writes: number): void {
    this.turnWrites += writes;
    if (this.holdingCorks && performance.now() - this.heldAt >= FLUSH_AFTER_MS) {
      this.releaseCorks(); // held long enough: send, and hold again for the rest
      if (this.backlogHead < this.backlog.length || this.split !== undefined) this.holdCorks();
    }
    this.scheduleTurn();
  }

  /**
   * deliver() while some resumed connections still drop live copies of their
   * replay: the slow path, short-lived. An event without an sse-hub id is
   * live-only (never in a replay) and takes the fast path.
   */
  private deliverPastFloors(set: Set<Connection>, frame: Buffer, id: EventIdParts, replays: Replays): void {
    replays.floors.pass(id);
    if (set.size > WRITES_PER_TURN - this.turnWrites) {
      this.startSplit(
        frame,
        [...set].filter((connection) => !replays.floors.drops(connection)),
      );
      return;
    }
    let written = 0;
    for (const connection of set) {
      if (replays.floors.drops(connection)) continue;
      if (connection.write(frame)) written++;
    }
    this.counters.framesWritten += written;
    this.wrote(set.size);
  }

  /**
   * deliver() when ids are ordered per channel only: each stream skips what
   * it has (its replay may have read ahead of the live copy) and a stream on
   * several channels gets its own id, the list of its positions.
   */
  private deliverPositioned(
    set: Set<Connection>,
    channel: string,
    event: SseEvent,
    id: EventIdParts,
    positions: ChannelPositions,
  ): void {
    const frames = new EventFrames(event);
    let written = 0;
    for (const connection of set) {
      if (positions.write(connection, channel, id, frames, false)) written++;
    }
    this.counters.framesWritten += written;
    this.wrote(set.size);
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

  /** Drops the broker subscription of a channel nobody listens on or resumes on any more. */
  private releaseIfIdle(channel: string): void {
    const set = this.listeners.get(channel);
    if (set === undefined || set.size !== 0 || this.replays?.isResuming(channel) === true) return;
    this.listeners.delete(channel);
    if (!this.closing) this.brokerUnsubscribe(channel);
  }

  private detach(connection: Connection): void {
    if (!this.connections.delete(connection)) return;
    this.replaysWaiting.delete(connection);
    this.heartbeat.remove(connection);
    this.replays?.forget(connection);
    this.presenceState.detached(connection);
    if (connection.closeReason === 'slow') {
      this.counters.slowClientsClosed++;
      const channels = connection.channels.join(',');
      if (this.replays?.wasStalled(connection) === true) {
        const { replayStallTimeout } = this.options;
        this.refusals.record(
          'slow-client',
          `closed a resume on ${channels}: it took no bytes for ${replayStallTimeout} ms`,
        );
        this.options.logger.info('closed a resuming SSE client that took nothing', {
          channels: connection.channels,
          replayStallTimeout,
        });
      } else {
        this.refusals.record(
          'slow-client',
          `closed a client on ${channels}: more than ${this.options.maxBufferedBytes} bytes unsent`,
        );
        this.options.logger.info('closed a slow SSE client', {
          channels: connection.channels,
          maxBufferedBytes: this.options.maxBufferedBytes,
        });
      }
    }
    for (const channel of connection.channels) {
      const set = this.listeners.get(channel);
      if (set === undefined) continue;
      set.delete(connection);
      this.releaseIfIdle(channel);
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
    this.channelEvents.set(channel, 0);
    this.catchUp?.subscribing(channel, subscribed, () => this.listeners.has(channel));
    this.historyCache?.subscribed(channel, subscribed);
  }

  private brokerUnsubscribe(channel: string): void {
    this.subscriptions.delete(channel);
    this.channelEvents.delete(channel);
    this.catchUp?.unsubscribed(channel);
    this.positions?.forget(channel);
    this.historyCache?.unsubscribed(channel);
    this.broker.unsubscribe(channel).catch((err: unknown) => {
      this.options.logger.warn(`could not unsubscribe from channel "${channel}"`, { error: String(err) });
    });
  }
}
