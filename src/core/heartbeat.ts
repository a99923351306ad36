// Heartbeats for every connection of a hub, from one timer. Invariant: each
// connection is checked once per half heartbeat and pinged when nothing was
// written to it since its previous check, so no stream is silent for longer
// than `heartbeat` ms and an idle one gets one ping per heartbeat, not more.
import type { Connection, HeartbeatTicks } from './connection.js';
import { encodeHeartbeatEvent, PING_FRAME } from './frame.js';

/** Sub-ticks per half heartbeat: the checks are spread so 10k idle streams are not written in one burst. */
export const HEARTBEAT_SLICES = 8;

export interface HeartbeatOptions {
  /** Milliseconds between pings on an idle stream. */
  heartbeat: number;
  /** Send the `heartbeat` event pages can see instead of the `: ping` comment. */
  heartbeatEvent: boolean;
}

export class Heartbeat {
  /** Advanced once per sub-tick; every connection stamps its writes with it. */
  readonly ticks: HeartbeatTicks = { tick: 0 };
  private readonly options: HeartbeatOptions;
  /** Connections by slice: sub-tick n checks slice n % HEARTBEAT_SLICES. */
  private readonly slices: Set<Connection>[] = Array.from({ length: HEARTBEAT_SLICES }, () => new Set());
  private nextSlice = 0;
  private readonly timer: NodeJS.Timeout;
  /** The heartbeat event frame of the current pass over all slices, shared by every connection. */
  private eventFrame: { pass: number; frame: Buffer } | undefined;

  constructor(options: HeartbeatOptions) {
    this.options = options;
    const subTickMs = Math.max(1, Math.floor(options.heartbeat / 2 / HEARTBEAT_SLICES));
    this.timer = setInterval(() => this.beat(), subTickMs);
    this.timer.unref();
  }

  /** Starts checking `connection`; slices are filled in turn so they stay the same size. */
  add(connection: Connection): void {
    (this.slices[this.nextSlice++ % HEARTBEAT_SLICES] as Set<Connection>).add(connection);
  }

  remove(connection: Connection): void {
    for (const slice of this.slices) slice.delete(connection);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * `: ping`, or with heartbeatEvent the `heartbeat` event: built at most once
   * per pass over all slices (half a heartbeat), shared by every connection.
   */
  frame(): Buffer {
    if (!this.options.heartbeatEvent) return PING_FRAME;
    const pass = Math.floor(this.ticks.tick / HEARTBEAT_SLICES);
    if (this.eventFrame?.pass !== pass) {
      this.eventFrame = { pass, frame: encodeHeartbeatEvent(this.options.heartbeat, Date.now()) };
    }
    return this.eventFrame.frame;
  }

  private beat(): void {
    // Writes after this sub-tick are stamped tick + 1; a connection of this
    // slice was last checked HEARTBEAT_SLICES sub-ticks ago, so a stamp of at
    // most tick - HEARTBEAT_SLICES means nothing was written since.
    const tick = this.ticks.tick++;
    const slice = this.slices[tick % HEARTBEAT_SLICES] as Set<Connection>;
    let frame: Buffer | undefined;
    for (const connection of slice) {
      if (connection.lastWriteTick <= tick - HEARTBEAT_SLICES) connection.write((frame ??= this.frame()));
    }
  }
}
