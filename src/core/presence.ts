// Presence in this process: which channels have open connections, how many,
// and which users (docs/operations.md "Presence"). Invariant: nothing here
// runs per event or per subscriber — it changes on attach and detach only,
// and the broker reads snapshot() on its refresh timer, so the cost of
// presence does not grow with the event rate.
import {
  hasPresence,
  type Broker,
  type ChannelPresence,
  type PresenceHandle,
  type PresenceReading,
  type PresenceSource,
} from './broker.js';
import type { Connection } from './connection.js';
import type { SseEvent } from './event.js';
import type { ResolvedHubOptions } from './options.js';
import { PresenceEvents } from './presence-events.js';

interface LocalChannel {
  connections: number;
  /** User → open connections of that user on the channel. */
  users: Map<string, number>;
}

/** A user's first connection on a channel opened, or their last one closed. */
export type PresenceChange = (action: 'join' | 'leave', channel: string, user: string) => void;

/** One row of hub.channels(): a channel with open connections somewhere. */
export interface ChannelSummary extends ChannelPresence {
  channel: string;
}

/** hub.presenceOverview(): every channel with connections, and how many processes were summed. */
export interface PresenceOverview {
  processes: number;
  channels: ChannelSummary[];
}

export class LocalPresence implements PresenceSource {
  version = 0;
  private readonly channels = new Map<string, LocalChannel>();
  /** Tracked connections → their user (undefined in query mode). */
  private readonly tracked = new Map<Connection, string | undefined>();
  private readonly onChange: PresenceChange | undefined;

  constructor(onChange?: PresenceChange) {
    this.onChange = onChange;
  }

  attached(connection: Connection, user: string | undefined): void {
    if (this.tracked.has(connection)) return;
    this.tracked.set(connection, user);
    this.version++;
    for (const channel of connection.channels) {
      let entry = this.channels.get(channel);
      if (entry === undefined) this.channels.set(channel, (entry = { connections: 0, users: new Map() }));
      entry.connections++;
      if (user === undefined) continue;
      const open = entry.users.get(user) ?? 0;
      entry.users.set(user, open + 1);
      if (open === 0) this.onChange?.('join', channel, user);
    }
  }

  detached(connection: Connection): void {
    if (!this.tracked.has(connection)) return;
    const user = this.tracked.get(connection);
    this.tracked.delete(connection);
    this.version++;
    for (const channel of connection.channels) {
      const entry = this.channels.get(channel);
      if (entry === undefined) continue;
      entry.connections--;
      if (user !== undefined) {
        const open = (entry.users.get(user) ?? 1) - 1;
        if (open > 0) entry.users.set(user, open);
        else {
          entry.users.delete(user);
          this.onChange?.('leave', channel, user);
        }
      }
      if (entry.connections === 0) this.channels.delete(channel);
    }
  }

  /** This process's presence on one channel (zero when nobody is here). */
  get(channel: string): ChannelPresence {
    const entry = this.channels.get(channel);
    if (entry === undefined) return { connections: 0, users: [] };
    return { connections: entry.connections, users: [...entry.users.keys()].sort() };
  }

  /** Open connections of `user` on `channel` in this process. */
  userConnections(channel: string, user: string): number {
    return this.channels.get(channel)?.users.get(user) ?? 0;
  }

  snapshot(): Map<string, ChannelPresence> {
    const result = new Map<string, ChannelPresence>();
    for (const channel of this.channels.keys()) result.set(channel, this.get(channel));
    return result;
  }
}

/** Adds `more` into `into`, users deduplicated. */
export function addPresence(into: Map<string, ChannelPresence>, channel: string, more: ChannelPresence): void {
  const current = into.get(channel);
  if (current === undefined) {
    into.set(channel, { connections: more.connections, users: [...more.users] });
    return;
  }
  current.connections += more.connections;
  if (more.users.length > 0) current.users = [...new Set([...current.users, ...more.users])].sort();
}

/** This process's presence plus the others', as hub.channels() answers: busiest first. */
export function mergePresence(
  local: Map<string, ChannelPresence>,
  others: PresenceReading | undefined,
): ChannelSummary[] {
  const all = new Map<string, ChannelPresence>();
  for (const [channel, presence] of local) addPresence(all, channel, presence);
  if (others !== undefined) for (const [channel, presence] of others.channels) addPresence(all, channel, presence);
  return [...all]
    .map(([channel, presence]) => ({ channel, ...presence }))
    .sort((a, b) => b.connections - a.connections || (a.channel < b.channel ? -1 : 1));
}

/**
 * The hub's presence, whole: this process's LocalPresence, its registration
 * with a presence-capable broker, and the optional presence events. The hub
 * calls attached()/detached() and delegates its presence API here.
 */
export class HubPresence {
  readonly local: LocalPresence;
  private readonly handle: PresenceHandle | undefined;
  private readonly events: PresenceEvents | undefined;

  constructor(
    broker: Broker,
    options: ResolvedHubOptions,
    publish: (channel: string, event: SseEvent) => Promise<unknown>,
  ) {
    this.local = new LocalPresence((action, channel, user) => this.events?.changed(action, channel, user));
    // A broker without the capability: this process is all there is to see.
    this.handle = hasPresence(broker) ? broker.trackPresence(this.local) : undefined;
    if (options.presenceChannels.length > 0) {
      this.events = new PresenceEvents({
        patterns: options.presenceChannels,
        debounce: options.presenceDebounce,
        local: this.local,
        readOthers: (channel) => this.handle?.readOthers(channel) ?? Promise.resolve(undefined),
        publish,
        logger: options.logger,
      });
    }
  }

  attached(connection: Connection, options: { user?: string; observer?: boolean }): void {
    if (options.observer !== true) this.local.attached(connection, options.user);
  }

  detached(connection: Connection): void {
    this.local.detached(connection);
  }

  /** One channel, across every process (channel already validated). */
  async get(channel: string): Promise<ChannelPresence> {
    const others = await this.handle?.readOthers(channel);
    const [summary] = mergePresence(new Map([[channel, this.local.get(channel)]]), others);
    return { connections: summary?.connections ?? 0, users: summary?.users ?? [] };
  }

  /** Every channel with connections, across every process unless `localOnly`. */
  async overview(localOnly = false): Promise<PresenceOverview> {
    const others = localOnly ? undefined : await this.handle?.readOthers();
    const channels = mergePresence(this.local.snapshot(), others).filter((c) => c.connections > 0);
    return { processes: 1 + (others?.processes ?? 0), channels };
  }

  /** Stops the events' timers and withdraws this process's record. */
  close(): void {
    this.events?.close();
    this.handle?.stop();
  }
}
