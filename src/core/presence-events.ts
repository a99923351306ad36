// Optional `presence` events (docs/operations.md "Presence events"): on the
// channels matching presenceChannels, a user's first connection sends
// `join` and their last one, after a quiet `presenceDebounce`, sends `leave`.
// Invariant: a user is announced once however many tabs or processes they
// have — a join or leave is sent only when no other process lists that user,
// and a reconnect within the debounce sends nothing at all.
import type { PresenceReading } from './broker.js';
import { toEvent, type SseEvent } from './event.js';
import type { Logger } from './logger.js';
import type { LocalPresence } from './presence.js';

/** What a `presence` event's data holds (JSON). */
export interface PresenceEventData {
  action: 'join' | 'leave';
  user: string;
  /** Distinct users on the channel after the change, across every process. */
  count: number;
}

export interface PresenceEventsOptions {
  /** Channel names, `*` matching any run of channel-name characters (validated by options.ts). */
  patterns: readonly string[];
  /** Ms a user must stay gone before `leave` is sent. */
  debounce: number;
  local: LocalPresence;
  /** The other processes' presence on a channel, or undefined on a single-process broker. */
  readOthers: (channel: string) => Promise<PresenceReading | undefined>;
  publish: (channel: string, event: SseEvent) => Promise<unknown>;
  logger: Logger;
}

/** A RegExp matching any of `patterns` (`*` = zero or more channel-name characters). */
export function presencePattern(patterns: readonly string[]): RegExp {
  const alternatives = patterns.map((p) => p.split('*').map(escape).join('[A-Za-z0-9_.:@-]*'));
  return new RegExp(`^(?:${alternatives.join('|')})$`);
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export class PresenceEvents {
  private readonly options: PresenceEventsOptions;
  private readonly pattern: RegExp;
  /** Channel → whether it sends presence events; bounded by the channels in use. */
  private readonly matched = new Map<string, boolean>();
  /** `channel \n user` → the timer of a leave not yet sent. */
  private readonly leaving = new Map<string, NodeJS.Timeout>();
  private closed = false;

  constructor(options: PresenceEventsOptions) {
    this.options = options;
    this.pattern = presencePattern(options.patterns);
  }

  /** Whether `channel` sends presence events. */
  covers(channel: string): boolean {
    let yes = this.matched.get(channel);
    if (yes === undefined) {
      yes = this.pattern.test(channel);
      if (this.matched.size > 10_000) this.matched.clear();
      this.matched.set(channel, yes);
    }
    return yes;
  }

  /** A user's first connection on `channel` in this process opened, or their last one here closed. */
  changed(action: 'join' | 'leave', channel: string, user: string): void {
    if (this.closed || !this.covers(channel)) return;
    const key = `${channel}\n${user}`;
    if (action === 'join') {
      const pending = this.leaving.get(key);
      if (pending !== undefined) {
        // Back within the debounce: the leave is never sent, nor a second join.
        clearTimeout(pending);
        this.leaving.delete(key);
        return;
      }
      void this.announce('join', channel, user);
      return;
    }
    const timer = setTimeout(() => {
      this.leaving.delete(key);
      if (this.options.local.userConnections(channel, user) === 0) void this.announce('leave', channel, user);
    }, this.options.debounce);
    timer.unref();
    this.leaving.set(key, timer);
  }

  close(): void {
    this.closed = true;
    for (const timer of this.leaving.values()) clearTimeout(timer);
    this.leaving.clear();
  }

  private async announce(action: 'join' | 'leave', channel: string, user: string): Promise<void> {
    const { local, logger } = this.options;
    try {
      const others = await this.options.readOthers(channel);
      const elsewhere = others?.channels.get(channel)?.users ?? [];
      // Another process has this user on the channel: it was announced there.
      if (elsewhere.includes(user) || this.closed) return;
      // Recheck here: the user may have come or gone while the others were read.
      const here = local.userConnections(channel, user) > 0;
      if (here !== (action === 'join')) return;
      const users = new Set([...local.get(channel).users, ...elsewhere]);
      const data: PresenceEventData = { action, user, count: users.size };
      await this.options.publish(channel, toEvent('presence', data));
    } catch (err) {
      logger.warn(`could not send a presence ${action} on channel "${channel}"`, { error: String(err) });
    }
  }
}
