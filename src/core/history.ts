// Event ids and the in-memory history (docs/protocol.md#event-ids-and-history). An id is `<ms>-<seq>` (like a
// Redis stream id): milliseconds of the clock that issued it, then a sequence
// within that millisecond. Invariant: ids only ever grow — across channels, and
// across restarts as long as the clock does not go back — so "after id X" means
// the same thing on every channel and replay order is id order.
import type {
  Broker,
  BrokerHistory,
  ChannelHistory,
  HistoryLength,
  HistoryLimits,
  HistoryPage,
  HistorySnapshot,
} from './broker.js';
import type { SseEvent } from './event.js';

/** A parsed id: [milliseconds, sequence]. */
export type EventIdParts = readonly [ms: number, seq: number];

const ID_PATTERN = /^(\d{1,15})-(\d{1,15})$/;

/** An id that is greater than every id sse-hub issues; "after it" means nothing. */
export const NEWEST_ID = `${Number.MAX_SAFE_INTEGER}-0`;

/** Parses an sse-hub id; undefined for anything else (ids from bare publishers, junk). */
export function parseEventId(id: string | undefined): EventIdParts | undefined {
  if (id === undefined) return undefined;
  const match = ID_PATTERN.exec(id);
  if (match === null) return undefined;
  const ms = Number(match[1]);
  const seq = Number(match[2]);
  return Number.isSafeInteger(ms) && Number.isSafeInteger(seq) ? [ms, seq] : undefined;
}

/** True when `id` is an sse-hub history id. */
export function isHistoryId(id: string | undefined): id is string {
  return parseEventId(id) !== undefined;
}

export function compareIdParts(a: EventIdParts, b: EventIdParts): number {
  return a[0] - b[0] || a[1] - b[1];
}

/** Compares two valid ids (check them with isHistoryId first). */
export function compareIds(a: string, b: string): number {
  return compareIdParts(parseEventId(a) as EventIdParts, parseEventId(b) as EventIdParts);
}

/** The greater of two valid ids. */
export function maxId(a: string, b: string): string {
  return compareIds(a, b) >= 0 ? a : b;
}

export function formatId(ms: number, seq: number): string {
  return `${ms}-${seq}`;
}

/**
 * The id after which a channel's history is complete: the greatest id it has
 * dropped, the point where the history began (start-up, or Redis restarted
 * empty), and the ttl cut-off, whichever is latest.
 */
export function historyHorizon(maxDropped: string | null, start: string, nowMs: number, ttlSeconds: number): string {
  let horizon = maxId(start, formatId(Math.max(0, nowMs - ttlSeconds * 1000), 0));
  if (maxDropped !== null && isHistoryId(maxDropped)) horizon = maxId(horizon, maxDropped);
  return horizon;
}

/** The data of a `gap` event (docs/protocol.md#the-gap-event): what the client asked for and the oldest id still kept. */
export function gapEvent(channel: string, lastEventId: string, oldestId: string | null): SseEvent {
  return { event: 'gap', data: JSON.stringify({ lastEventId, oldestId, channel }) };
}

/** Issues increasing ids from the local clock (memory history). */
export class IdClock {
  private ms = 0;
  private seq = 0;

  next(now: number = Date.now()): string {
    if (now > this.ms) {
      this.ms = now;
      this.seq = 0;
    } else {
      this.seq++;
    }
    return formatId(this.ms, this.seq);
  }
}

interface Kept {
  event: SseEvent & { id: string };
  /** Local clock time it was kept, for the ttl. */
  at: number;
}

interface ChannelRing {
  /** Fixed-size ring: `size` slots, oldest at `head`. */
  slots: (Kept | undefined)[];
  head: number;
  length: number;
  /** Greatest id dropped (by size or ttl), null if none yet. */
  maxDropped: string | null;
}

/**
 * History for brokers without the capability (the memory broker): one ring
 * buffer per channel in this process, filled when an event is published here.
 * Channels whose events all expired are forgotten; the ttl part of the
 * horizon still reports the loss.
 */
export class MemoryHistory implements BrokerHistory, HistoryLength {
  private readonly broker: Broker;
  private readonly clock = new IdClock();
  private readonly rings = new Map<string, ChannelRing>();
  private readonly start: string;
  private lastId: string;

  constructor(broker: Broker) {
    this.broker = broker;
    this.start = this.clock.next();
    this.lastId = this.start;
  }

  async publishWithHistory(channel: string, event: SseEvent, limits: HistoryLimits): Promise<string> {
    const now = Date.now();
    const id = this.clock.next(now);
    this.lastId = id;
    const kept = { event: { event: event.event, data: event.data, id }, at: now };
    this.append(channel, kept, limits, now);
    await this.broker.publish(channel, kept.event);
    return id;
  }

  readHistory(after: ReadonlyMap<string, string>, limits: HistoryLimits, page?: HistoryPage): Promise<HistorySnapshot> {
    const count = page?.count ?? Infinity;
    const now = Date.now();
    const channels = new Map<string, ChannelHistory>();
    for (const [channel, afterId] of after) {
      const ring = this.rings.get(channel);
      if (ring !== undefined) this.expire(channel, ring, limits, now);
      const live = this.rings.get(channel);
      const events: SseEvent[] = [];
      let oldestId: string | null = null;
      let more = false;
      if (live !== undefined) {
        const floor = parseEventId(afterId);
        oldestId = (live.slots[live.head] as Kept).event.id;
        // Ids grow along the ring: binary-search the first one after the floor, then copy one page.
        let i = 0;
        if (floor !== undefined) {
          let high = live.length;
          while (i < high) {
            const mid = (i + high) >>> 1;
            if (compareIdParts(this.idAt(live, mid), floor) <= 0) i = mid + 1;
            else high = mid;
          }
        }
        for (; i < live.length; i++) {
          if (events.length === count) {
            more = true;
            break;
          }
          events.push((live.slots[(live.head + i) % live.slots.length] as Kept).event);
        }
      }
      channels.set(channel, {
        events,
        oldestId,
        horizon: historyHorizon(live?.maxDropped ?? null, this.start, now, limits.ttl),
        more,
      });
    }
    return Promise.resolve({ channels, lastId: this.lastId });
  }

  /** Events kept per channel (those past their ttl are dropped at the next read or write). */
  historyLength(channels: readonly string[]): Promise<number[]> {
    return Promise.resolve(channels.map((channel) => this.rings.get(channel)?.length ?? 0));
  }

  private idAt(ring: ChannelRing, i: number): EventIdParts {
    return parseEventId((ring.slots[(ring.head + i) % ring.slots.length] as Kept).event.id) as EventIdParts;
  }

  /** Channels currently holding events; for tests and stats. */
  channelCount(): number {
    return this.rings.size;
  }

  private append(channel: string, kept: Kept, limits: HistoryLimits, now: number): void {
    let ring = this.rings.get(channel);
    if (ring === undefined || ring.slots.length !== limits.size) {
      ring = { slots: new Array<Kept | undefined>(limits.size), head: 0, length: 0, maxDropped: null };
      this.rings.set(channel, ring);
    }
    if (ring.length === ring.slots.length) {
      ring.maxDropped = (ring.slots[ring.head] as Kept).event.id;
      ring.slots[ring.head] = undefined;
      ring.head = (ring.head + 1) % ring.slots.length;
      ring.length--;
    }
    ring.slots[(ring.head + ring.length) % ring.slots.length] = kept;
    ring.length++;
    this.expire(channel, ring, limits, now);
  }

  /** Drops events older than ttl; forgets the channel once it keeps nothing. */
  private expire(channel: string, ring: ChannelRing, limits: HistoryLimits, now: number): void {
    const cutoff = now - limits.ttl * 1000;
    while (ring.length > 0) {
      const oldest = ring.slots[ring.head] as Kept;
      if (oldest.at >= cutoff) break;
      ring.maxDropped = oldest.event.id;
      ring.slots[ring.head] = undefined;
      ring.head = (ring.head + 1) % ring.slots.length;
      ring.length--;
    }
    if (ring.length === 0) this.rings.delete(channel);
  }
}
