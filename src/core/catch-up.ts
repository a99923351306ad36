// Hub-wide catch-up after a broker outage: while the broker is down its events
// are queued; once it is back, every listened channel's history since the last
// event received is delivered in id order, a page at a time, then the queue.
// Invariant: each event reaches the listeners exactly once and in id order
// across the outage.
import type { BrokerHistory, HistoryLimits } from './broker.js';
import type { SseEvent } from './event.js';
import { maxId, parseEventId, type EventIdParts } from './history.js';
import { IdFloors, isNewer, PagedHistoryRead, type ReadLimiter } from './history-read.js';
import type { Logger } from './logger.js';

/** What catch-up needs from the hub; not the hub itself. */
export interface CatchUpPort {
  /** Channels with local listeners: the ones to catch up. */
  listenedChannels(): Iterable<string>;
  /** The greatest history id received live (one pub/sub connection: arrival order is id order). */
  lastReceivedId(): string | undefined;
  /**
   * When ids are ordered per channel only (Redis Cluster): the newest id
   * delivered on `channel`. The catch-up then starts per channel, and the
   * hub drops what was delivered already (core/positions.ts).
   */
  lastDeliveredOn?: (channel: string) => string | undefined;
  /** Fans one event out to the channel's listeners. */
  deliver(channel: string, event: SseEvent, id: EventIdParts | undefined): void;
  /** Whether the broker's subscription connection is up. */
  brokerHealthy(): boolean;
  /** True once the hub is closing. */
  closed(): boolean;
}

/** Broker events that arrived during an outage, with their parsed ids. */
interface OutageQueue {
  channels: string[];
  events: SseEvent[];
  ids: (EventIdParts | undefined)[];
}

/** The only key of the hub-wide floor. */
const HUB = 'hub';

export class CatchUp {
  private readonly port: CatchUpPort;
  private readonly history: BrokerHistory;
  private readonly limits: HistoryLimits;
  private readonly logger: Logger;
  /** Set while the broker is down or the hub is catching up; broker events wait here. */
  private outageQueue: OutageQueue | undefined;
  /** Channel → the last id issued when its subscription became live: where its catch-up starts at the latest. */
  private readonly startIds = new Map<string, string>();
  /** Live copies of caught-up events are dropped (the read and the PUBLISH race). */
  private readonly floor = new IdFloors<typeof HUB>();
  private running: Promise<void> | undefined;
  private runAgain = false;
  /** Resolved when a catch-up completes or the hub closes (resuming connections wait on it). */
  private readonly waiters = new Set<() => void>();
  /** Events delivered from history by catch-ups. */
  eventsCaughtUp = 0;

  private readonly limiter: ReadLimiter | undefined;

  constructor(port: CatchUpPort, history: BrokerHistory, limits: HistoryLimits, logger: Logger, limiter?: ReadLimiter) {
    this.limiter = limiter;
    this.port = port;
    this.history = history;
    this.limits = limits;
    this.logger = logger;
  }

  /** True while broker events are queued (the broker is down, or the hub is catching up). */
  get queueing(): boolean {
    return this.outageQueue !== undefined;
  }

  /**
   * Takes a broker event when it must not be delivered now: queued during an
   * outage, or dropped as the live copy of a caught-up event. False: deliver it.
   */
  intercept(channel: string, event: SseEvent, id: EventIdParts | undefined): boolean {
    const queue = this.outageQueue;
    if (queue !== undefined) {
      queue.channels.push(channel);
      queue.events.push(event);
      queue.ids.push(id);
      return true;
    }
    if (this.floor.size !== 0 && id !== undefined) {
      this.floor.pass(id);
      return this.floor.drops(HUB);
    }
    return false;
  }

  /** The broker went down: queue its events until the hub has caught up. */
  brokerDown(): void {
    this.outageQueue ??= { channels: [], events: [], ids: [] };
  }

  /** The broker is back: catch up (again, if a catch-up is already running). */
  brokerUp(): void {
    if (this.outageQueue === undefined || this.port.closed()) return;
    if (this.running !== undefined) {
      this.runAgain = true;
      return;
    }
    this.running = this.run().finally(() => {
      this.running = undefined;
      if (this.runAgain) {
        this.runAgain = false;
        this.brokerUp();
      }
    });
  }

  /** Resolves when the current catch-up completes or the hub closes; check `queueing` again after. */
  whenCaughtUp(): Promise<void> {
    return new Promise<void>((resolve) => this.waiters.add(resolve));
  }

  /**
   * `channel`'s broker subscription is being made: once it is live, note the
   * last id issued, since every later event reaches the subscription.
   */
  subscribing(channel: string, subscribed: Promise<void>, stillListened: () => boolean): void {
    if (this.outageQueue !== undefined) return;
    void subscribed
      .then(() => this.history.readHistory(new Map(), this.limits))
      .then((snapshot) => {
        if (stillListened()) this.startIds.set(channel, snapshot.lastId);
      })
      .catch(() => undefined);
  }

  unsubscribed(channel: string): void {
    this.startIds.delete(channel);
  }

  /** The hub closes: nobody waits any more. */
  close(): void {
    this.wake();
  }

  private wake(): void {
    for (const resolve of this.waiters) resolve();
    this.waiters.clear();
  }

  /** Reads what every listened channel missed, delivers it page by page, then the queue newer than it. */
  private async run(): Promise<void> {
    const { port } = this;
    const keepTrying = (): boolean => this.outageQueue !== undefined && !port.closed() && port.brokerHealthy();
    while (keepTrying()) {
      const read = new PagedHistoryRead(() => this.startPoints(), {
        history: this.history,
        limits: this.limits,
        limiter: this.limiter,
        keepTrying,
        onError: (err) => this.logger.debug('could not catch up from history; retrying', { error: String(err) }),
      });
      // Down again: keep queueing; the next recovery retries.
      if ((await read.start()) === undefined || !port.brokerHealthy()) return;
      // Everything up to the last id received was delivered (before the
      // outage, or by an earlier catch-up that the broker cut short).
      const lastReceived = port.lastReceivedId();
      let newest: EventIdParts | undefined = lastReceived === undefined ? undefined : parseEventId(lastReceived);
      let missed = 0;
      for (let item = await read.next(); item !== null; item = await read.next()) {
        if (item === undefined) {
          this.report(missed);
          return; // down again mid-way: what was delivered stays, the rest follows on recovery
        }
        port.deliver(item.channel, item.event, item.id);
        newest = item.id;
        missed++;
      }
      this.report(missed);
      const queue = this.outageQueue as OutageQueue;
      this.outageQueue = undefined;
      const perChannel = port.lastDeliveredOn !== undefined; // the hub drops what it delivered already
      for (let i = 0; i < queue.events.length; i++) {
        const id = queue.ids[i];
        if (perChannel || isNewer(id, newest)) {
          port.deliver(queue.channels[i] as string, queue.events[i] as SseEvent, id);
          if (id !== undefined) newest = id;
        }
      }
      if (newest !== undefined && !perChannel) this.floor.set(HUB, newest);
      this.wake();
    }
  }

  private report(missed: number): void {
    this.eventsCaughtUp += missed;
    if (missed > 0) this.logger.info(`caught up ${missed} events missed while the broker was away`);
  }

  /**
   * Per listened channel, the id to read after: the later of its start id and
   * the last id received (on that channel, when ids are ordered per channel).
   */
  private startPoints(): Map<string, string> {
    const after = new Map<string, string>();
    const { lastDeliveredOn } = this.port;
    const lastReceivedAnywhere = this.port.lastReceivedId();
    for (const channel of this.port.listenedChannels()) {
      let from: string | undefined;
      if (lastDeliveredOn !== undefined) {
        // This process's clock says nothing of another publisher's ids: only the channel's own do.
        from = lastDeliveredOn(channel) ?? this.startIds.get(channel);
      } else {
        from = this.startIds.get(channel);
        if (lastReceivedAnywhere !== undefined)
          from = from === undefined ? lastReceivedAnywhere : maxId(from, lastReceivedAnywhere);
      }
      if (from !== undefined) after.set(channel, from);
    }
    return after;
  }
}
