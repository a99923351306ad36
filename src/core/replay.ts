// Resuming one connection from its Last-Event-ID: it is subscribed live first
// and its live events queue behind the replay; then history after the id, read
// a page at a time at the client's pace, then the queued events newer than the
// replay, then it joins the listeners. Invariants: nothing is missed and
// nothing repeats, across that hand-over too; a replay holds at most one page
// beyond its connection's unsent bytes, and one that makes no progress ends.
import type { BrokerHistory, HistoryLimits } from './broker.js';
import type { Connection } from './connection.js';
import type { SseEvent } from './event.js';
import { encodeFrame, sharedFrame } from './frame.js';
import { EventFrames, resumePoints, type ChannelPositions } from './positions.js';
import {
  compareIdParts,
  compareIds,
  formatId,
  gapEvent,
  NEWEST_ID,
  parseEventId,
  type EventIdParts,
} from './history.js';
import { IdFloors, isNewer, PagedHistoryRead, type ReadLimiter } from './history-read.js';
import type { Logger } from './logger.js';

/** What a replay needs from the hub; not the hub itself. */
export interface ReplayPort {
  /** Subscribes `channel` at the broker if nobody has (without listening); resolves once live events flow. */
  subscribe(channel: string): Promise<void>;
  /** Makes `connection` a listener of `channel`: from now on the fan-out writes to it. */
  listen(connection: Connection, channel: string): void;
  /** Drops `channel`'s broker subscription if nobody listens or resumes on it any more. */
  release(channel: string): void;
  /** The greatest history id received live, if any. */
  lastReceivedId(): EventIdParts | undefined;
  /** While the hub queues broker events after an outage: resolves when that may have ended. */
  whenCaughtUp(): Promise<void> | undefined;
  /** True once the hub is closing. */
  closed(): boolean;
}

/** Replay gives up on a resuming connection (it reconnects) once this many live events wait behind it. */
export const MAX_QUEUED_EVENTS = 10_000;

/**
 * A replay writes the events it has at hand as one chunk of up to this many
 * bytes (and never more than the connection has room for): one socket write
 * per batch, not three per event. Thousands of resumes after a deploy are
 * bound by syscalls and loopback packets, not by bytes.
 */
export const REPLAY_BATCH_BYTES = 64 * 1024;

/** Frames gathered for one write. */
class Batch {
  frames: Buffer[] = [];
  bytes = 0;
  budget = 0;

  /** Starts a batch that may hold up to `room` bytes (at least one frame). */
  reset(room: number): void {
    this.frames.length = 0;
    this.bytes = 0;
    this.budget = Math.min(REPLAY_BATCH_BYTES, room);
  }

  add(frame: Buffer): void {
    this.frames.push(frame);
    this.bytes += frame.length;
  }

  get full(): boolean {
    return this.bytes >= this.budget;
  }

  /** Writes what it holds as one chunk; false when the connection closed. */
  flush(connection: Connection): boolean {
    if (this.frames.length === 0) return connection.open;
    const written = connection.writeOwnFrames(this.frames, this.bytes);
    this.frames.length = 0;
    this.bytes = 0;
    return written;
  }
}

/** A connection being resumed: its live events wait here until its replay is written. */
interface Resume {
  connection: Connection;
  queued: SseEvent[];
  /** The channel of each queued event. */
  queuedChannels: string[];
  /** The parsed id of each queued event (parsed once, in the hub). */
  queuedIds: (EventIdParts | undefined)[];
}

export interface ReplayOptions {
  history: BrokerHistory;
  limits: HistoryLimits;
  logger: Logger;
  /** Milliseconds a congested replay may go without the client taking a byte; then it is closed as slow. */
  stallTimeout: number;
  /** Bounds the history reads in flight, shared with catch-up. */
  limiter?: ReadLimiter;
  /** Set when ids are ordered per channel only: the replay then resumes each channel from its own position. */
  positions?: ChannelPositions;
}

export class Replays {
  /**
   * Resumed connections → the newest id their replay wrote: the fan-out skips
   * live copies at or below it (the history read and the live PUBLISH race).
   */
  readonly floors = new IdFloors<Connection>();
  /** Events written from history to resuming connections. */
  eventsReplayed = 0;
  /** `gap` events sent: a client asked for history that is no longer kept. */
  gapsSent = 0;
  /** Replays ended because their client took nothing for stallTimeout ms. */
  replaysStalled = 0;
  /** Replays running now. */
  active = 0;
  /** Connections a stall ended, so that the hub can say why they were closed. */
  private readonly stalled = new WeakSet<Connection>();
  private readonly port: ReplayPort;
  private readonly options: ReplayOptions;
  /** Channel → resuming connections queueing its live events. */
  private readonly resuming = new Map<string, Set<Resume>>();

  constructor(port: ReplayPort, options: ReplayOptions) {
    this.port = port;
    this.options = options;
  }

  /** True while some connection resumes on `channel` (its broker subscription must stay). */
  isResuming(channel: string): boolean {
    return this.resuming.has(channel);
  }

  /** Queues a live event for every connection resuming on `channel`: once per event per resume, never per listener. */
  queue(channel: string, event: SseEvent, id: EventIdParts | undefined): void {
    if (this.resuming.size === 0) return;
    const resumes = this.resuming.get(channel);
    if (resumes === undefined) return;
    for (const resume of resumes) {
      resume.queued.push(event);
      resume.queuedChannels.push(channel);
      resume.queuedIds.push(id);
    }
  }

  /** True when a replay closed `connection` because its client took nothing for the stall timeout. */
  wasStalled(connection: Connection): boolean {
    return this.stalled.has(connection);
  }

  /** A connection closed: it drops no more copies. */
  forget(connection: Connection): void {
    this.floors.delete(connection);
  }

  /**
   * Resumes `connection` from `lastEventId`: subscribe live first and queue
   * its events, read the first page of every channel's history after the id
   * at one instant, write a `gap` event per channel whose history no longer
   * reaches back, then the missed events in id order, page by page, then the
   * queued events newer than the replay.
   */
  async resume(connection: Connection, lastEventId: string): Promise<void> {
    const { port } = this;
    const { history, limits, logger, limiter } = this.options;
    const resume: Resume = { connection, queued: [], queuedChannels: [], queuedIds: [] };
    const { channels } = connection;
    this.active++;
    const subscribed = channels.map((channel) => {
      const settled = port.subscribe(channel);
      let set = this.resuming.get(channel);
      if (set === undefined) this.resuming.set(channel, (set = new Set()));
      set.add(resume);
      return settled;
    });
    const { positions } = this.options;
    const asked = parseEventId(lastEventId);
    // Per-channel ids: the client's id may list a position per channel.
    const points = positions === undefined ? undefined : resumePoints(channels, lastEventId);
    const after = new Map(
      channels.map((channel): [string, string] => {
        const point = points?.get(channel);
        if (point !== undefined) return [channel, formatId(point[0], point[1])];
        return [channel, asked === undefined || positions !== undefined ? NEWEST_ID : lastEventId];
      }),
    );
    const read = new PagedHistoryRead(() => after, {
      history,
      limits,
      limiter,
      keepTrying: () => connection.open && resume.queued.length <= MAX_QUEUED_EVENTS,
      onError: (err) => logger.debug('could not read history for a resuming client; retrying', { error: String(err) }),
      // Trimmed between two pages (a slow client on a busy channel): said like any other gap.
      onGap: (channel, readUpTo, kept) => {
        this.gapsSent++;
        connection.write(encodeFrame(gapEvent(channel, readUpTo, kept.oldestId)));
      },
    });
    try {
      await Promise.all(subscribed);
      const first = await read.start();
      // Events the hub itself still has to catch up on must reach this
      // queue, not slip behind the connection once it listens.
      for (let wait = port.whenCaughtUp(); wait !== undefined && connection.open && !port.closed();) {
        await wait;
        wait = port.whenCaughtUp();
      }
      if (!connection.open) return;
      if (first === undefined) {
        connection.end('server'); // too much waited behind it: it reconnects with the same id
        return;
      }
      let newest: EventIdParts | undefined = asked;
      const known = positions === undefined ? asked !== undefined : points !== undefined;
      for (const channel of channels) {
        const kept = first.channels.get(channel);
        if (kept === undefined) continue;
        if (!known || compareIds(after.get(channel) as string, kept.horizon) < 0) {
          this.gapsSent++;
          connection.write(encodeFrame(gapEvent(channel, lastEventId, kept.oldestId)));
        }
      }
      positions?.start(connection, points);
      // The replay may be far larger than maxBufferedBytes: write it at the
      // client's pace, reading the next page only when this one is written
      // (live events keep queueing meanwhile).
      const batch = new Batch();
      for (;;) {
        if (!(await this.paced(resume))) return;
        let item = await read.next();
        if (item === null) break;
        if (item === undefined) {
          connection.end('server'); // the broker stayed away, or too much waited behind it
          return;
        }
        if (positions !== undefined) {
          positions.write(connection, item.channel, item.id, new EventFrames(item.event), true);
          this.eventsReplayed++;
          continue;
        }
        // Whatever the pages at hand hold goes out in one write.
        batch.reset(connection.room);
        for (; item !== undefined && item !== null; item = batch.full ? undefined : read.ready()) {
          batch.add(sharedFrame(item.event));
          newest = item.id;
          this.eventsReplayed++;
        }
        if (!batch.flush(connection)) return;
      }
      // Then the queued events newer than the replay. The loop re-reads the
      // queue after every pause, and from its last check to joining the
      // listeners nothing awaits, so no event can fall in between.
      for (let i = 0; i < resume.queued.length;) {
        if (!(await this.paced(resume))) return;
        if (positions !== undefined) {
          // Per channel: the stream skips what its replay wrote already.
          const id = resume.queuedIds[i];
          const event = resume.queued[i] as SseEvent;
          if (id === undefined) connection.write(encodeFrame(event));
          else positions.write(connection, resume.queuedChannels[i] as string, id, new EventFrames(event), true);
          i++;
          continue;
        }
        batch.reset(connection.room);
        for (; i < resume.queued.length && !batch.full; i++) {
          const id = resume.queuedIds[i];
          if (!isNewer(id, newest)) continue;
          batch.add(sharedFrame(resume.queued[i] as SseEvent));
          if (id !== undefined) newest = id;
        }
        if (!batch.flush(connection)) return;
      }
      if (!connection.open) return;
      const lastReceived = port.lastReceivedId();
      if (
        positions === undefined &&
        newest !== undefined &&
        (lastReceived === undefined || compareIdParts(lastReceived, newest) < 0)
      ) {
        this.floors.set(connection, newest);
      }
      for (const channel of channels) port.listen(connection, channel);
    } finally {
      this.active--;
      for (const channel of channels) {
        const set = this.resuming.get(channel);
        set?.delete(resume);
        if (set?.size === 0) this.resuming.delete(channel);
        if (!connection.open) port.release(channel);
      }
    }
  }

  /**
   * Waits while the connection is congested. False when it closed; when too
   * many live events piled up behind it (it is ended and reconnects from
   * where it got to); or when the client took no byte for stallTimeout ms (it
   * is closed like a slow client: pacing alone would hold it forever).
   */
  private async paced(resume: Resume): Promise<boolean> {
    const { connection } = resume;
    let unsent = connection.unsentBytes;
    let progressAt = Date.now();
    while (connection.congested) {
      if (resume.queued.length > MAX_QUEUED_EVENTS) {
        connection.end('server');
        return false;
      }
      if (connection.unsentBytes < unsent) {
        unsent = connection.unsentBytes;
        progressAt = Date.now();
      } else if (Date.now() - progressAt >= this.options.stallTimeout) {
        this.replaysStalled++;
        this.stalled.add(connection);
        connection.end('slow');
        return false;
      }
      await connection.whenWritable();
    }
    return connection.open;
  }
}
