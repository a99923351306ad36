// Where a stream stands on each of its channels, for brokers whose ids are
// ordered within a channel only (Redis Cluster: see BrokerChannelIds in
// core/broker.ts). One plain id cannot say "I have everything up to X" across
// channels whose ids come from different publishers' clocks and reach this
// process on different paths, so there a stream on several channels gets ids
// that list its position on each: `all=1733000000000-4,user:bob=1733000000002-0`
// (docs/deployment.md#ids-across-shards). Invariants: a positioned stream gets
// each event of a channel at most once, in that channel's order; it resumes on
// each channel exactly after the last event it got there.
import type { BrokerChannelIds } from './broker.js';
import type { Connection } from './connection.js';
import type { SseEvent } from './event.js';
import { encodeFrame } from './frame.js';
import { compareIdParts, formatId, parseEventId, type EventIdParts } from './history.js';
import { isChannelName } from './channel.js';

/** A stream's position per channel: the id of the last event it got there (or where it started). */
export type StreamPositions = Map<string, EventIdParts>;

/** Neither can occur in a channel name or an id. */
const ENTRY_SEPARATOR = ',';
const NAME_SEPARATOR = '=';

/** Formats positions in the order of the stream's channels; a channel with no position yet is left out. */
export function formatPositions(channels: readonly string[], positions: ReadonlyMap<string, EventIdParts>): string {
  let text = '';
  for (const channel of channels) {
    const id = positions.get(channel);
    if (id === undefined) continue;
    if (text !== '') text += ENTRY_SEPARATOR;
    text += `${channel}${NAME_SEPARATOR}${formatId(id[0], id[1])}`;
  }
  return text;
}

/** Parses a position list; undefined for anything else (a plain id, junk, a repeated channel). */
export function parsePositions(text: string): StreamPositions | undefined {
  if (!text.includes(NAME_SEPARATOR)) return undefined;
  const positions: StreamPositions = new Map();
  for (const entry of text.split(ENTRY_SEPARATOR)) {
    const at = entry.lastIndexOf(NAME_SEPARATOR);
    const channel = entry.slice(0, at);
    const id = parseEventId(entry.slice(at + 1));
    if (at <= 0 || !isChannelName(channel) || id === undefined || positions.has(channel)) return undefined;
    positions.set(channel, id);
  }
  return positions;
}

/**
 * Where a resume starts on each of `channels`, from the client's
 * Last-Event-ID: a plain id applies to every channel (what a stream on one
 * channel, or any stream on one Redis, sends); a position list gives each
 * channel its own. A channel the list leaves out (the stream had no position
 * there yet, or gained the channel since) starts after the least listed id.
 * Undefined when the id is neither: the stream cannot tell what it missed.
 */
export function resumePoints(channels: readonly string[], lastEventId: string): StreamPositions | undefined {
  const plain = parseEventId(lastEventId);
  const listed = plain === undefined ? parsePositions(lastEventId) : undefined;
  if (plain === undefined && listed === undefined) return undefined;
  let least = plain;
  for (const id of listed?.values() ?? []) if (least === undefined || compareIdParts(id, least) < 0) least = id;
  const points: StreamPositions = new Map();
  for (const channel of channels) points.set(channel, listed?.get(channel) ?? (least as EventIdParts));
  return points;
}

/**
 * The frames of one event, each built at most once: with the event's own id
 * (for streams on one channel, shared by all of them), and without an id (a
 * stream on several channels puts its own position list in front).
 */
export class EventFrames {
  private readonly event: SseEvent;
  private withOwnId: Buffer | undefined;
  private body: Buffer | undefined;

  constructor(event: SseEvent) {
    this.event = event;
  }

  shared(): Buffer {
    return (this.withOwnId ??= encodeFrame(this.event));
  }

  withPositions(list: string): Buffer {
    this.body ??= encodeFrame({ event: this.event.event, data: this.event.data });
    const head = `id: ${list}\n`;
    const frame = Buffer.allocUnsafe(head.length + this.body.length);
    frame.write(head, 0, 'latin1'); // channel names and ids are ASCII
    this.body.copy(frame, head.length);
    return frame;
  }
}

/**
 * The hub's side: the newest id delivered per channel (so a live copy of an
 * event that a catch-up already delivered is dropped), and each stream's
 * positions.
 */
export class ChannelPositions {
  private readonly broker: BrokerChannelIds;
  /** Channel → the newest id this hub delivered on it (live or caught up). */
  private readonly delivered = new Map<string, EventIdParts>();

  constructor(broker: BrokerChannelIds) {
    this.broker = broker;
  }

  /**
   * A broker event with history id `id` on `channel`, live or caught up:
   * true when this or a newer one was delivered already (a copy: a channel's
   * ids only grow, and arrive in order). Else it is noted as delivered.
   */
  isCopy(channel: string, id: EventIdParts): boolean {
    const last = this.delivered.get(channel);
    if (last !== undefined && compareIdParts(id, last) <= 0) return true;
    this.delivered.set(channel, id);
    return false;
  }

  /** The newest id delivered on `channel` (or known there when its subscription became live): where its catch-up starts. */
  lastDelivered(channel: string): string | undefined {
    const last = this.delivered.get(channel);
    return last === undefined ? this.broker.channelLastId(channel) : formatId(last[0], last[1]);
  }

  /** The channel's subscription is gone: what comes next on it is new. */
  forget(channel: string): void {
    this.delivered.delete(channel);
  }

  /** A stream that starts now, or resumes from `points`. */
  start(connection: Connection, points?: StreamPositions): void {
    connection.positions = points ?? new Map();
    this.fill(connection, connection.positions);
  }

  /**
   * Writes the next event of `channel` to a positioned stream, unless the
   * stream got it already (a replay and the live PUBLISH race). `own`: the
   * frame is this stream's alone (a replay), else it is shared. True when written.
   */
  write(connection: Connection, channel: string, id: EventIdParts, frames: EventFrames, own: boolean): boolean {
    const positions = connection.positions;
    if (positions === undefined) return connection.write(frames.shared());
    const at = positions.get(channel);
    if (at !== undefined && compareIdParts(id, at) <= 0) return false;
    positions.set(channel, id);
    if (connection.channels.length === 1) {
      return own ? connection.writeOwn(frames.shared()) : connection.write(frames.shared());
    }
    if (positions.size < connection.channels.length) this.fill(connection, positions);
    return connection.writeOwn(frames.withPositions(formatPositions(connection.channels, positions)));
  }

  /**
   * A channel where the stream has no position yet starts at the newest id
   * known there: every event up to it came before the stream, or reached it
   * (and so gave it a position). Unknown until the channel's subscription is
   * live; the channel is then left out of the list for now.
   */
  private fill(connection: Connection, positions: StreamPositions): void {
    for (const channel of connection.channels) {
      if (positions.has(channel)) continue;
      const newest = this.delivered.get(channel) ?? parseEventId(this.broker.channelLastId(channel));
      if (newest !== undefined) positions.set(channel, newest);
    }
  }
}
