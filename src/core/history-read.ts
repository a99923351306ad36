// Reading history while live events keep arriving, for a resuming connection
// (core/replay.ts) and for the hub after a broker outage (core/catch-up.ts).
// Invariants: a read is paged, so nothing holds a whole history at once; the
// pages merge into id order; whatever a read delivered, its live copy is
// dropped — and nothing newer ever is.
import type { BrokerHistory, ChannelHistory, HistoryLimits, HistorySnapshot } from './broker.js';
import type { SseEvent } from './event.js';
import { compareIdParts, compareIds, parseEventId, type EventIdParts } from './history.js';

/**
 * Events one history read returns at most, spread over the channels read.
 * At 8 KB per event a page is 128 KB: one short Redis call, and what a paced
 * replay holds on top of its connection's unsent bytes.
 */
export const PAGE_EVENTS = 16;

/** History reads one hub has in flight at most (see ReadLimiter). */
export const READS_IN_FLIGHT = 4;

/**
 * Lets at most `limit` history reads run at once; the others wait here, in
 * order. A crowd of resumes then queues in this process, not at the broker,
 * so a shared Redis keeps answering everyone else (PING, publishes, session
 * lookups) within a few page reads.
 */
export class ReadLimiter {
  private readonly limit: number;
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(limit: number) {
    this.limit = limit;
  }

  async run<T>(read: () => Promise<T>): Promise<T> {
    if (this.running < this.limit) this.running++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve)); // a finishing read hands its slot over
    try {
      return await read();
    } finally {
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.running--;
    }
  }
}

/** Backoff between failed reads: 100 ms doubling to 2 s, as a new broker subscription retries. */
export function readBackoffMs(attempt: number): number {
  return Math.min(100 * 2 ** attempt, 2000);
}

/**
 * Reads history until it succeeds. While the broker is down the read fails:
 * it is retried with backoff for as long as `keepTrying()` says, which is
 * asked before every attempt. Undefined when it gave up.
 */
export async function readHistoryWithRetry(
  read: () => Promise<HistorySnapshot>,
  keepTrying: () => boolean,
  onError: (err: unknown) => void,
): Promise<HistorySnapshot | undefined> {
  for (let attempt = 0; keepTrying(); attempt++) {
    try {
      return await read();
    } catch (err) {
      onError(err);
      await new Promise((resolve) => setTimeout(resolve, readBackoffMs(attempt)));
    }
  }
  return undefined;
}

/**
 * True when an event with `id` is new after `newest`, the newest id already
 * written. An event without an sse-hub id is live-only (never part of a read)
 * and so always new.
 */
export function isNewer(id: EventIdParts | undefined, newest: EventIdParts | undefined): boolean {
  return id === undefined || newest === undefined || compareIdParts(id, newest) > 0;
}

/**
 * "Drop live copies at or below this id", per key (a connection, or the whole
 * hub). A history read and the live PUBLISH travel on different broker
 * connections, so an event can be in the read and still arrive live
 * afterwards. Ids arrive live in id order (one script issues the id and
 * publishes), so the first live event above a floor removes it for good.
 */
export class IdFloors<K> {
  private readonly floors = new Map<K, EventIdParts>();

  /** Keys that still drop copies; 0 on the fast path. */
  get size(): number {
    return this.floors.size;
  }

  /** From now on `key` drops live events with an id at or below `id`. */
  set(key: K, id: EventIdParts): void {
    this.floors.set(key, id);
  }

  delete(key: K): void {
    this.floors.delete(key);
  }

  /**
   * A live event with history id `id` arrives: every floor below it is gone.
   * Afterwards `drops(key)` tells whether `key` must skip this event.
   */
  pass(id: EventIdParts): void {
    for (const [key, floor] of this.floors) {
      if (compareIdParts(id, floor) > 0) this.floors.delete(key);
    }
  }

  /** True while `key` has a floor: the event just passed is a copy for it. */
  drops(key: K): boolean {
    return this.floors.has(key);
  }
}

/** One event of a paged read, with its parsed id. */
export interface HistoryItem {
  channel: string;
  event: SseEvent;
  id: EventIdParts;
}

export interface PagedReadOptions {
  history: BrokerHistory;
  limits: HistoryLimits;
  /** Shared by every read of a hub; without it reads are not limited. */
  limiter?: ReadLimiter;
  /** Asked before every attempt of every page: false gives up. */
  keepTrying: () => boolean;
  onError: (err: unknown) => void;
  /**
   * Between two pages of `channel`, events after `after` (the last one read
   * there) were dropped from its history: the client missed them.
   */
  onGap?: (channel: string, after: string, kept: ChannelHistory) => void;
}

/** One channel's place in a paged read. */
interface Cursor {
  channel: string;
  /** The last id read on this channel (or where the read started). */
  after: string;
  /** The current page; taken entries are cleared so they can be collected. */
  events: (SseEvent | undefined)[];
  ids: EventIdParts[];
  next: number;
  /** The history may keep more after this page. */
  more: boolean;
  /** Which read filled this page (PagedHistoryRead#epoch then). */
  epoch: number;
}

/**
 * Several channels' history after their ids, merged in id order, read one
 * page at a time: the channels share one page of PAGE_EVENTS (at least one
 * event each), and a channel is read again only once its part is used up, so
 * the merge never passes an event still to come; a channel that had no more
 * is read again (with the next read) once it is used up and another channel
 * was read after it, for the same reason.
 */
export class PagedHistoryRead {
  private readonly options: PagedReadOptions;
  private readonly startAfter: () => ReadonlyMap<string, string>;
  private cursors: Cursor[] = [];
  /** Events per channel per read: PAGE_EVENTS shared by every channel of the read, so at most one page is held. */
  private perChannel = PAGE_EVENTS;
  /** Reads made so far: a finished channel read before the latest read is stale. */
  private epoch = 0;

  /** `after` is asked once per attempt of the first page: channel → the id after which to read. */
  constructor(after: () => ReadonlyMap<string, string>, options: PagedReadOptions) {
    this.startAfter = after;
    this.options = options;
  }

  /**
   * Reads the first page of every channel at one instant, retrying while the
   * broker is down. Undefined when it gave up; else the snapshot, whose
   * horizons and oldest ids tell whether the start ids were still kept.
   */
  async start(): Promise<HistorySnapshot | undefined> {
    let after: ReadonlyMap<string, string> = new Map();
    const snapshot = await this.read(() => {
      after = this.startAfter();
      this.perChannel = Math.max(1, Math.floor(PAGE_EVENTS / Math.max(1, after.size)));
      return after;
    }, undefined);
    if (snapshot === undefined) return undefined;
    this.cursors = [...after].map(([channel, from]) => this.cursor(channel, from, snapshot.channels.get(channel)));
    return snapshot;
  }

  /** The next event in id order across the channels; null at the end; undefined when a read gave up. */
  async next(): Promise<HistoryItem | null | undefined> {
    for (;;) {
      const item = this.ready();
      if (item !== undefined) return item;
      // A channel whose read said "that is all" was complete only at the
      // instant of that read. Once another channel was read later, that one
      // may hold events newer than some published on the first since; so a
      // finished channel that is used up is read again, together with the
      // next refill, before the merge goes on (else the merge would pass
      // them, and the replay would drop their live copies as old: lost). It
      // returns only what was published on it since, usually nothing.
      const used = this.cursors.filter((c) => c.next === c.events.length);
      const dry = used.filter((c) => c.more).length;
      if (!(await this.refill(used, Math.max(1, dry)))) return undefined;
    }
  }

  /**
   * The next event when the pages held already decide it: a replay takes
   * what is at hand in one go, and writes it as one chunk. Undefined when
   * next() must read first; null at the end.
   */
  ready(): HistoryItem | null | undefined {
    let best: Cursor | undefined;
    for (const cursor of this.cursors) {
      if (cursor.next === cursor.events.length) {
        if (cursor.more || cursor.epoch < this.epoch) return undefined;
        continue;
      }
      if (
        best === undefined ||
        compareIdParts(cursor.ids[cursor.next] as EventIdParts, best.ids[best.next] as EventIdParts) < 0
      )
        best = cursor;
    }
    if (best === undefined) return null;
    const event = best.events[best.next] as SseEvent;
    const id = best.ids[best.next] as EventIdParts;
    best.events[best.next++] = undefined;
    best.after = event.id as string;
    return { channel: best.channel, event, id };
  }

  /** Reads `dry` again at one instant; the page not held elsewhere is shared by `share` of them (those with more). */
  private async refill(dry: Cursor[], share: number): Promise<boolean> {
    // Whatever of the page the other channels do not hold goes to these: a
    // resume whose history sits in one of many channels still reads full pages.
    let held = 0;
    for (const cursor of this.cursors) if (!dry.includes(cursor)) held += cursor.events.length - cursor.next;
    const count = Math.max(this.perChannel, Math.floor((PAGE_EVENTS - held) / share));
    const snapshot = await this.read(() => new Map(dry.map((c) => [c.channel, c.after])), count);
    if (snapshot === undefined) return false;
    this.epoch++;
    for (const cursor of dry) {
      const kept = snapshot.channels.get(cursor.channel);
      if (kept !== undefined && compareIds(cursor.after, kept.horizon) < 0) {
        this.options.onGap?.(cursor.channel, cursor.after, kept);
      }
      Object.assign(cursor, this.cursor(cursor.channel, cursor.after, kept));
    }
    return true;
  }

  private cursor(channel: string, after: string, kept: ChannelHistory | undefined): Cursor {
    if (kept?.ids !== undefined && kept.ids.length === kept.events.length) {
      // Parsed already (the history cache): thousands of replays of one page parse nothing.
      const { events, ids } = kept;
      return { channel, after, events, ids, next: 0, more: kept.more === true && events.length > 0, epoch: this.epoch };
    }
    const events: SseEvent[] = [];
    const ids: EventIdParts[] = [];
    for (const event of kept?.events ?? []) {
      const id = parseEventId(event.id);
      if (id === undefined) continue; // kept events always have one; never trust a broker blindly
      events.push(event);
      ids.push(id);
    }
    return { channel, after, events, ids, next: 0, more: kept?.more === true && events.length > 0, epoch: this.epoch };
  }

  /** One read with retry; `count` events per channel, or perChannel (set by `after`) when undefined. */
  private read(
    after: () => ReadonlyMap<string, string>,
    count: number | undefined,
  ): Promise<HistorySnapshot | undefined> {
    const { history, limits, limiter, keepTrying, onError } = this.options;
    const readPage = (): Promise<HistorySnapshot> => {
      const channels = after();
      return history.readHistory(channels, limits, { count: count ?? this.perChannel });
    };
    return readHistoryWithRetry(
      () => (limiter === undefined ? readPage() : limiter.run(readPage)),
      keepTrying,
      onError,
    );
  }
}
