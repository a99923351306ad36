// A per-process cache of each channel's recent history, in front of a shared
// history (Redis), so that N clients resuming on one channel cost about one
// paged read of it, not N (docs/performance.md#the-history-cache). A channel's
// cached run is every event with an id in (from, tail]: filled backwards from
// the broker, extended forwards by the live events the hub receives.
// Invariant: a run is contiguous with live delivery, or it does not exist —
// it starts only while the channel's subscription is live and events flow,
// and is dropped on anything that could break that (unsubscribe, outage).
import type { BrokerHistory, ChannelHistory, HistoryLimits, HistoryPage, HistorySnapshot } from './broker.js';
import type { SseEvent } from './event.js';
import { compareIdParts, formatId, parseEventId, type EventIdParts } from './history.js';
import { PAGE_EVENTS, type ReadLimiter } from './history-read.js';

/** Bytes every cached run together holds at most (counted as characters plus a per-event overhead). */
export const CACHE_BYTES = 64 * 1024 * 1024;

/** Bytes one channel's run holds at most. */
export const CHANNEL_CACHE_BYTES = 16 * 1024 * 1024;

/** A run nobody read for this long is dropped (its channel reads the broker again, starting a new one). */
export const CACHE_IDLE_MS = 60_000;

/**
 * A read waits for live delivery to reach the instant it must be answered at
 * (see HistoryCache#answer) only while live events keep coming: when none came
 * for this long, it reads the broker instead, as without a cache.
 */
export const LIVE_WAIT_MS = 250;

/** A read waits for live delivery this long at most, however busy (a hub seconds behind catches up meanwhile). */
export const MAX_LIVE_WAIT_MS = 10_000;

/**
 * Answers from memory handed over per event-loop turn at most. A broker's
 * answer comes on a later turn; one from memory would come at once, and a
 * crowd of replays would then write page after page while live delivery, and
 * the accepting of new connections, wait behind them: at 2,000 resuming
 * clients, unbounded answers left the listen queue overflowing (clients back
 * after 37 s instead of 6), and 16 a turn kept them back within 11 s while
 * replays still ran several times faster than from Redis (bench/RESULTS.md).
 */
export const ANSWERS_PER_TURN = 16;

/** Per-event memory beyond its strings: the object, its id, two array slots. */
const EVENT_OVERHEAD = 96;

/**
 * A page answered from memory holds events up to this many bytes, however
 * few the read asked for: its events are held here anyway, so a longer page
 * costs nothing, and a replay writes what it gets in one chunk. A page of 16
 * events (sized for a Redis call) made a crowd of replays cost a syscall, and
 * an event-loop turn, per 16 events.
 */
export const MEMORY_PAGE_BYTES = 64 * 1024;

/** What the cache needs from the hub. */
export interface HistoryCachePort {
  /** True while live events reach the hub in order, without loss: the broker is up and nothing is being caught up on. */
  flowing(): boolean;
}

export interface HistoryCacheOptions {
  /**
   * True when ids grow across channels (one Redis: one id counter). Then a
   * read of several channels is answered as of one instant, as Redis answers
   * it. False when ids are ordered per channel only (BrokerChannelIds: a Redis
   * Cluster): each channel's answer is then complete up to its own newest
   * event, and the replay keeps a position per channel (core/positions.ts).
   */
  orderedIds: boolean;
  /** Defaults to CACHE_BYTES. */
  maxBytes?: number;
  /** Defaults to CHANNEL_CACHE_BYTES. */
  maxChannelBytes?: number;
  /** Defaults to LIVE_WAIT_MS. */
  liveWaitMs?: number;
  /**
   * Bounds the cache's own broker reads (fills and reads passed on), shared
   * with catch-up. Answers from memory take no slot: a crowd of resumes on a
   * cached channel runs at the pace of its clients, not of 4 reads at a time.
   */
  limiter?: ReadLimiter;
}

/** What an operator sees of the cache (hub.stats(), /metrics). */
export interface HistoryCacheStats {
  /** Reads answered from memory. */
  hits: number;
  /** Reads passed on to the broker whole (no live run covered them). */
  misses: number;
  /** Page reads the cache made itself, to start or extend a run. */
  fillReads: number;
  /** Events held now, over every channel. */
  events: number;
  /** Bytes held now (approximate). */
  bytes: number;
}

/** One channel's cached run. */
interface Run {
  /** False until the first fill has read up to the live edge; live events wait in `events` meanwhile. */
  started: boolean;
  /** Every event of the channel with an id in (from, tail] is in `events` (once started). */
  from: EventIdParts;
  fromId: string;
  tail: EventIdParts;
  tailId: string;
  /**
   * The broker's last id when the run started: events published before the
   * subscription was live may have ids up to it, and never arrive live.
   */
  start: EventIdParts;
  /** Oldest first; entries before `head` were evicted. */
  events: SseEvent[];
  ids: EventIdParts[];
  head: number;
  bytes: number;
  /** The oldest id a waiting read needs, while a fill is due. */
  wanted: EventIdParts | undefined;
  wantedId: string | undefined;
  /**
   * Reads from here back cannot be served: the run could not hold what lies
   * between (its bounds). They go to the broker at once instead of filling again.
   */
  unreachable: EventIdParts | undefined;
  /** The fill in flight: every read missing on this channel waits for this one. */
  filling: Promise<void> | undefined;
  readAt: number;
}

/** A read waiting for live delivery to pass an id. */
interface LiveWaiter {
  id: EventIdParts;
  resolve: (reached: boolean) => void;
}

/** The event's strings, plus its frame (shared by every replay of it, see sharedFrame), plus the object. */
const eventBytes = (event: SseEvent): number =>
  2 * (event.data.length + event.event.length + (event.id?.length ?? 0)) + EVENT_OVERHEAD;

export class HistoryCache implements BrokerHistory {
  private readonly history: BrokerHistory;
  private readonly port: HistoryCachePort;
  private readonly orderedIds: boolean;
  private readonly maxBytes: number;
  private readonly maxChannelBytes: number;
  private readonly liveWaitMs: number;
  private readonly limiter: ReadLimiter | undefined;
  /** When the last live event with an id arrived (ordered ids), by performance.now(). */
  private receivedAt = 0;
  private limits: HistoryLimits | undefined;
  /** Channel → its current broker subscription (a token), so a late `settled` of an older one is ignored. */
  private readonly subscriptions = new Map<string, object>();
  /** Channels whose broker subscription is live. */
  private readonly live = new Set<string>();
  private readonly runs = new Map<string, Run>();
  private bytes = 0;
  private events = 0;
  /** Ordered ids: the greatest id received live. Every live run holds its channel's events up to it. */
  private newest: { id: string; parts: EventIdParts } | undefined;
  /**
   * Ordered ids: the greatest `lastId` of a broker read handed to a reader.
   * An answer from memory must not be older than an answer already given.
   */
  private handedOut: EventIdParts | undefined;
  private readonly waiters: LiveWaiter[] = [];
  /** Answers from memory waiting for their turn (see ANSWERS_PER_TURN), first come first served. */
  private readonly handOver: (() => void)[] = [];
  private turnScheduled = false;
  private readonly sweeper: NodeJS.Timeout;
  private counters = { hits: 0, misses: 0, fillReads: 0 };

  constructor(history: BrokerHistory, port: HistoryCachePort, options: HistoryCacheOptions) {
    this.history = history;
    this.port = port;
    this.orderedIds = options.orderedIds;
    this.maxBytes = options.maxBytes ?? CACHE_BYTES;
    this.maxChannelBytes = options.maxChannelBytes ?? CHANNEL_CACHE_BYTES;
    this.liveWaitMs = options.liveWaitMs ?? LIVE_WAIT_MS;
    this.limiter = options.limiter;
    this.sweeper = setInterval(() => this.sweep(Date.now()), CACHE_IDLE_MS / 2);
    this.sweeper.unref();
  }

  get stats(): HistoryCacheStats {
    return { ...this.counters, events: this.events, bytes: this.bytes };
  }

  publishWithHistory(channel: string, event: SseEvent, limits: HistoryLimits): Promise<string> {
    return this.history.publishWithHistory(channel, event, limits);
  }

  /**
   * A paged read of channels whose runs cover it is answered from memory;
   * a run that does not reach back far enough is filled first (one fill per
   * channel at a time, shared by every read waiting on it). Anything else —
   * an unpaged read, a channel without a live run, a fill that could not
   * connect — reads the broker, as without the cache.
   */
  async readHistory(
    after: ReadonlyMap<string, string>,
    limits: HistoryLimits,
    page?: HistoryPage,
  ): Promise<HistorySnapshot> {
    this.limits = limits;
    if (page === undefined || after.size === 0) return this.read(after, limits, page);
    const wanted: [string, EventIdParts][] = [];
    for (const [channel, id] of after) {
      const parts = parseEventId(id);
      if (parts === undefined) return this.passOn(after, limits, page);
      wanted.push([channel, parts]);
    }
    for (const [channel, id] of wanted) {
      if (!(await this.cover(channel, id))) return this.passOn(after, limits, page);
    }
    const answer = await this.answer(wanted, Math.max(1, Math.floor(page.count)));
    if (answer === undefined) return this.passOn(after, limits, page);
    await this.nextTurn();
    return answer;
  }

  /** `channel`'s broker subscription is being made: a run may start once it is live. */
  subscribed(channel: string, settled: Promise<void>): void {
    const subscription = {};
    this.subscriptions.set(channel, subscription);
    void settled.then(() => {
      if (this.subscriptions.get(channel) === subscription) this.live.add(channel);
    });
  }

  /** Nothing more arrives on `channel`: its run can no longer follow it. */
  unsubscribed(channel: string): void {
    this.subscriptions.delete(channel);
    this.live.delete(channel);
    this.drop(channel);
  }

  /** The broker went down: live events were lost, so every run is. New ones start once events flow again. */
  brokerDown(): void {
    for (const channel of [...this.runs.keys()]) this.drop(channel);
  }

  /**
   * Every event the hub receives from the broker, in arrival order, before
   * the fan-out gets to it (called once per event, never per listener). Extends the channel's run; an event already in it
   * (read by a fill before it arrived live) is skipped.
   */
  received(channel: string, event: SseEvent, id: EventIdParts | undefined): void {
    if (id === undefined) return; // live-only, never in history
    if (this.orderedIds) {
      this.receivedAt = performance.now();
      if (this.newest === undefined || compareIdParts(id, this.newest.parts) > 0) {
        this.newest = { id: event.id as string, parts: id };
        if (this.waiters.length !== 0) this.wake();
      }
    }
    const run = this.runs.get(channel);
    if (run === undefined || compareIdParts(id, run.tail) <= 0) return;
    if (!run.started) {
      // Waits for the first fill, which keeps what lies past the live edge it reads up to.
      this.push(run, event, id);
      if (run.events.length - run.head > (this.limits?.size ?? 0)) this.drop(channel);
      return;
    }
    run.tail = id;
    run.tailId = event.id as string;
    this.push(run, event, id);
    this.evict(run);
  }

  /** Stops the sweep timer and drops every run. */
  close(): void {
    clearInterval(this.sweeper);
    this.brokerDown();
    for (const waiter of this.waiters.splice(0)) waiter.resolve(false);
  }

  /** Drops the runs nobody read since `now - CACHE_IDLE_MS`. */
  sweep(now: number): void {
    for (const [channel, run] of this.runs) {
      if (run.filling === undefined && now - run.readAt >= CACHE_IDLE_MS) this.drop(channel);
    }
  }

  /**
   * Makes `channel`'s run reach back to `id`, starting or filling it; false
   * when it cannot (no live subscription, events not flowing, trimmed
   * history, a fill that broke). A failed broker read rejects, as a read would.
   */
  private async cover(channel: string, id: EventIdParts): Promise<boolean> {
    for (let attempt = 0; attempt < 2; attempt++) {
      let run = this.runs.get(channel);
      if (run === undefined) {
        if (!this.live.has(channel) || !this.port.flowing()) return false;
        run = this.newRun(channel);
      }
      run.readAt = Date.now();
      if (run.started && compareIdParts(id, run.from) >= 0) return true;
      if (run.started && run.unreachable !== undefined && compareIdParts(id, run.unreachable) <= 0) return false;
      if (run.wanted === undefined || compareIdParts(id, run.wanted) < 0) {
        run.wanted = id;
        run.wantedId = formatId(id[0], id[1]);
      }
      const current = run;
      current.filling ??= this.fillAll(channel, current).finally(() => (current.filling = undefined));
      await current.filling;
    }
    const run = this.runs.get(channel);
    return run !== undefined && run.started && compareIdParts(id, run.from) >= 0;
  }

  private newRun(channel: string): Run {
    const zero: EventIdParts = [0, 0];
    const run: Run = {
      started: false,
      from: zero,
      fromId: '0-0',
      tail: zero,
      tailId: '0-0',
      start: zero,
      events: [],
      ids: [],
      head: 0,
      bytes: 0,
      wanted: undefined,
      wantedId: undefined,
      unreachable: undefined,
      filling: undefined,
      readAt: Date.now(),
    };
    this.runs.set(channel, run);
    return run;
  }

  /** Fills until no waiting read wants more, or the run is gone. */
  private async fillAll(channel: string, run: Run): Promise<void> {
    try {
      while (this.runs.get(channel) === run && run.wanted !== undefined) {
        const target = run.wanted;
        const targetId = run.wantedId as string;
        run.wanted = undefined;
        if (run.started && compareIdParts(target, run.from) >= 0) continue;
        if (!(await this.fill(channel, run, target, targetId))) break;
      }
    } catch (err) {
      if (!run.started) this.drop(channel);
      throw err;
    } finally {
      run.wanted = undefined;
      if (!run.started && this.runs.get(channel) === run) this.drop(channel);
    }
  }

  /**
   * Reads the channel's history after `targetId`, a page at a time, up to
   * where the run begins (or, for a run not started yet, up to the live
   * edge: a read that says "that is all"), then joins it to the run. False
   * when it could not: the run moved meanwhile, or too much lies between.
   */
  private async fill(channel: string, run: Run, target: EventIdParts, targetId: string): Promise<boolean> {
    const limits = this.limits as HistoryLimits;
    let after = targetId;
    let base = target;
    let baseId = targetId;
    let events: SseEvent[] = [];
    let ids: EventIdParts[] = [];
    let bytes = 0;
    // The id up to which `events` is known complete.
    let complete: EventIdParts | undefined;
    let completeId = '';
    // A channel published to faster than pages can be read would keep a fill
    // chasing its live edge for ever. Events newer than the broker's last id
    // at the first page are that chase: past a history's worth of them, the
    // fill gives up (reads go to the broker, as without a cache).
    let edge: EventIdParts | undefined;
    let chased = 0;
    for (;;) {
      const snapshot = await this.read(new Map([[channel, after]]), limits, { count: PAGE_EVENTS });
      this.counters.fillReads++;
      edge ??= parseEventId(snapshot.lastId);
      if (this.runs.get(channel) !== run) return false;
      const kept: ChannelHistory = snapshot.channels.get(channel) ?? { events: [], oldestId: null, horizon: '0-0' };
      const horizon = parseEventId(kept.horizon);
      if (horizon !== undefined && compareIdParts(parseEventId(after) as EventIdParts, horizon) < 0) {
        // Trimmed after what was read so far: only what follows the horizon is contiguous.
        events = [];
        ids = [];
        bytes = 0;
        base = horizon;
        baseId = kept.horizon;
      }
      for (const event of kept.events) {
        const id = parseEventId(event.id);
        if (id === undefined || compareIdParts(id, base) <= 0) continue;
        const last = ids[ids.length - 1];
        if (last !== undefined && compareIdParts(id, last) <= 0) continue;
        events.push(event);
        ids.push(id);
        bytes += eventBytes(event);
      }
      if (!run.started) {
        // Starting: keep only the newest the run may hold; it begins after what is dropped.
        let drop = 0;
        while (drop < ids.length && (ids.length - drop > limits.size || bytes > this.maxChannelBytes)) {
          bytes -= eventBytes(events[drop] as SseEvent);
          base = ids[drop] as EventIdParts;
          baseId = events[drop]?.id as string;
          drop++;
        }
        if (drop > 0) {
          events = events.slice(drop);
          ids = ids.slice(drop);
        }
      } else if (ids.length + run.events.length - run.head > limits.size || bytes + run.bytes > this.maxChannelBytes) {
        // The run could not hold it all: reads from here back go to the broker.
        if (run.unreachable === undefined || compareIdParts(target, run.unreachable) > 0) run.unreachable = target;
        return false;
      }
      const last = ids[ids.length - 1];
      if (run.started && last !== undefined && compareIdParts(last, run.from) >= 0) {
        complete = last;
        completeId = events[events.length - 1]?.id as string;
        break;
      }
      const lastId = parseEventId(snapshot.lastId);
      if (kept.more !== true) {
        // Everything after `after` at the instant of this read: complete up to the broker's last id.
        if (lastId === undefined) return false;
        complete = last !== undefined && compareIdParts(last, lastId) > 0 ? last : lastId;
        completeId = complete === last ? (events[events.length - 1]?.id as string) : snapshot.lastId;
        break;
      }
      const next = kept.events[kept.events.length - 1]?.id;
      for (const event of kept.events) {
        const id = parseEventId(event.id);
        if (edge === undefined || (id !== undefined && compareIdParts(id, edge) > 0)) chased++;
      }
      if (next === undefined || chased > limits.size + PAGE_EVENTS) return false;
      after = next;
    }
    if (!run.started) {
      // The live events that arrived meanwhile and are newer than the read stay.
      const live: [SseEvent, EventIdParts][] = [];
      for (let i = run.head; i < run.events.length; i++) {
        if (compareIdParts(run.ids[i] as EventIdParts, complete) > 0)
          live.push([run.events[i] as SseEvent, run.ids[i] as EventIdParts]);
      }
      this.clear(run);
      run.started = true;
      run.start = complete;
      run.tail = complete;
      run.tailId = completeId;
      const starts = compareIdParts(base, complete) < 0;
      run.from = starts ? base : complete;
      run.fromId = starts ? baseId : completeId;
      for (let i = 0; i < events.length; i++) this.push(run, events[i] as SseEvent, ids[i] as EventIdParts);
      for (const [event, id] of live) {
        run.tail = id;
        run.tailId = event.id as string;
        this.push(run, event, id);
      }
      this.evict(run);
      return true;
    }
    // A started run: the read must reach where the run begins now (evictions move it).
    if (compareIdParts(complete, run.from) < 0 || compareIdParts(base, run.from) >= 0) return false;
    let keep = 0;
    while (keep < ids.length && compareIdParts(ids[keep] as EventIdParts, run.from) <= 0) keep++;
    const rest = run.events.slice(run.head);
    const restIds = run.ids.slice(run.head);
    this.clear(run);
    run.from = base;
    run.fromId = baseId;
    for (let i = 0; i < keep; i++) this.push(run, events[i] as SseEvent, ids[i] as EventIdParts);
    for (let i = 0; i < rest.length; i++) this.push(run, rest[i] as SseEvent, restIds[i] as EventIdParts);
    this.evict(run);
    return true;
  }

  /**
   * The answer from memory, or undefined when it cannot be given. With ids
   * ordered across channels a read of several channels must be one instant:
   * each run holds its channel's events up to the greatest id received live,
   * but only once that id has passed the run's start (events published before
   * the subscription was live can reach up to it) and every broker read
   * handed out before (so answers never go back in time). Until then the read
   * waits for live delivery, a little.
   */
  private async answer(wanted: [string, EventIdParts][], count: number): Promise<HistorySnapshot | undefined> {
    if (this.orderedIds) {
      const need = this.needed(wanted);
      if (need === null || (need !== undefined && !(await this.reached(need)))) return undefined;
      // Checked again with nothing awaited until the answer: a run may have been replaced meanwhile.
      const now = this.needed(wanted);
      if (now === null || (now !== undefined && compareIdParts(now, this.newest?.parts ?? [0, 0]) > 0)) {
        return undefined;
      }
    }
    const channels = new Map<string, ChannelHistory>();
    let lastId = this.newest?.id;
    for (const [channel, id] of wanted) {
      const run = this.runs.get(channel);
      if (run === undefined || !run.started || compareIdParts(id, run.from) < 0) return undefined;
      run.readAt = Date.now();
      channels.set(channel, this.page(run, id, count));
      if (
        !this.orderedIds &&
        (lastId === undefined || compareIdParts(run.tail, parseEventId(lastId) as EventIdParts) > 0)
      ) {
        lastId = run.tailId;
      }
    }
    this.counters.hits++;
    return { channels, lastId: lastId ?? '0-0' };
  }

  /**
   * Ordered ids: the id live delivery must have reached for the runs of
   * `wanted` to be answered as of one instant (undefined: none); null when a
   * channel has no run.
   */
  private needed(wanted: [string, EventIdParts][]): EventIdParts | undefined | null {
    let need = this.handedOut;
    for (const [channel] of wanted) {
      const run = this.runs.get(channel);
      if (run === undefined || !run.started) return null;
      if (need === undefined || compareIdParts(run.start, need) > 0) need = run.start;
    }
    return need;
  }

  /**
   * The events of the run after `id`: `count` at least, and more up to
   * MEMORY_PAGE_BYTES. Its horizon is where the run begins: nothing after it
   * is missing.
   */
  private page(run: Run, id: EventIdParts, count: number): ChannelHistory {
    let low = run.head;
    let high = run.ids.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (compareIdParts(run.ids[mid] as EventIdParts, id) <= 0) low = mid + 1;
      else high = mid;
    }
    let end = low;
    for (let bytes = 0; end < run.ids.length && (end - low < count || bytes < MEMORY_PAGE_BYTES); end++) {
      bytes += eventBytes(run.events[end] as SseEvent);
    }
    return {
      events: run.events.slice(low, end),
      ids: run.ids.slice(low, end),
      oldestId: run.head < run.events.length ? ((run.events[run.head] as SseEvent).id as string) : null,
      horizon: run.fromId,
      more: end < run.ids.length,
    };
  }

  /**
   * Resolves true once an event with an id at or past `id` was received live;
   * false when live events stopped coming (for liveWaitMs) or after
   * MAX_LIVE_WAIT_MS.
   */
  private reached(id: EventIdParts): Promise<boolean> {
    const received = this.newest?.parts;
    if (received !== undefined && compareIdParts(received, id) >= 0) return Promise.resolve(true);
    if (this.quietFor(this.liveWaitMs) || !this.port.flowing()) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const started = performance.now();
      let timer: NodeJS.Timeout;
      const waiter: LiveWaiter = { id, resolve };
      const check = (): void => {
        if (!this.quietFor(this.liveWaitMs) && performance.now() - started < MAX_LIVE_WAIT_MS) {
          timer = setTimeout(check, this.liveWaitMs);
          return;
        }
        const at = this.waiters.indexOf(waiter);
        if (at !== -1) this.waiters.splice(at, 1);
        resolve(false);
      };
      timer = setTimeout(check, this.liveWaitMs);
      waiter.resolve = (reached) => {
        clearTimeout(timer);
        resolve(reached);
      };
      this.waiters.push(waiter);
    });
  }

  /** False while live events keep arriving: the last one came less than `ms` ago. */
  private quietFor(ms: number): boolean {
    return this.newest === undefined || performance.now() - this.receivedAt >= ms;
  }

  private wake(): void {
    const received = (this.newest as { parts: EventIdParts }).parts;
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const waiter = this.waiters[i] as LiveWaiter;
      if (compareIdParts(received, waiter.id) >= 0) {
        this.waiters.splice(i, 1);
        waiter.resolve(true);
      }
    }
  }

  /** The read as without the cache; with ordered ids, later answers from memory must not be older than it. */
  private async passOn(
    after: ReadonlyMap<string, string>,
    limits: HistoryLimits,
    page: HistoryPage,
  ): Promise<HistorySnapshot> {
    this.counters.misses++;
    const snapshot = await this.read(after, limits, page);
    const lastId = parseEventId(snapshot.lastId);
    if (
      this.orderedIds &&
      lastId !== undefined &&
      (this.handedOut === undefined || compareIdParts(lastId, this.handedOut) > 0)
    ) {
      this.handedOut = lastId;
    }
    return snapshot;
  }

  /** Resolves on a later turn of the event loop, at most ANSWERS_PER_TURN at a time, in order. */
  private nextTurn(): Promise<void> {
    return new Promise((resolve) => {
      this.handOver.push(resolve);
      this.scheduleTurn();
    });
  }

  private scheduleTurn(): void {
    if (this.turnScheduled) return;
    this.turnScheduled = true;
    setImmediate(() => {
      this.turnScheduled = false;
      for (const resolve of this.handOver.splice(0, ANSWERS_PER_TURN)) resolve();
      if (this.handOver.length !== 0) this.scheduleTurn();
    });
  }

  /** One read of the broker's history, in a slot of the limiter when there is one. */
  private read(
    after: ReadonlyMap<string, string>,
    limits: HistoryLimits,
    page?: HistoryPage,
  ): Promise<HistorySnapshot> {
    const read = (): Promise<HistorySnapshot> => this.history.readHistory(after, limits, page);
    return this.limiter === undefined ? read() : this.limiter.run(read);
  }

  private push(run: Run, event: SseEvent, id: EventIdParts): void {
    const bytes = eventBytes(event);
    run.events.push(event);
    run.ids.push(id);
    run.bytes += bytes;
    this.bytes += bytes;
    this.events++;
  }

  /** Drops the run's oldest events past its bounds; where it begins moves with them. */
  private evict(run: Run): void {
    const size = this.limits?.size ?? 0;
    while (
      run.head < run.events.length &&
      (run.events.length - run.head > size || run.bytes > this.maxChannelBytes || this.bytes > this.maxBytes)
    ) {
      const event = run.events[run.head] as SseEvent;
      run.from = run.ids[run.head] as EventIdParts;
      run.fromId = event.id as string;
      run.events[run.head] = undefined as unknown as SseEvent;
      run.head++;
      const bytes = eventBytes(event);
      run.bytes -= bytes;
      this.bytes -= bytes;
      this.events--;
    }
    if (run.head > 1024 && run.head * 2 > run.events.length) {
      run.events = run.events.slice(run.head);
      run.ids = run.ids.slice(run.head);
      run.head = 0;
    }
  }

  private clear(run: Run): void {
    this.bytes -= run.bytes;
    this.events -= run.events.length - run.head;
    run.events = [];
    run.ids = [];
    run.head = 0;
    run.bytes = 0;
  }

  private drop(channel: string): void {
    const run = this.runs.get(channel);
    if (run === undefined) return;
    this.clear(run);
    this.runs.delete(channel);
  }
}
