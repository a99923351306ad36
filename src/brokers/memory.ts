// MemoryBroker: same-process fan-out with no set-up (docs/brokers.md). Delivery runs
// in a microtask so a publisher never re-enters the hub mid-callback, and
// events on one channel keep their order. Presence: the hubs sharing this
// broker are all in this process, so it answers from their live state.
import type {
  Broker,
  BrokerListener,
  BrokerPresence,
  ChannelPresence,
  PresenceHandle,
  PresenceReading,
  PresenceSource,
} from '../core/broker.js';
import { BrokerUnavailableError } from '../core/errors.js';
import type { SseEvent } from '../core/event.js';
import { addPresence } from '../core/presence.js';

export class MemoryBroker implements Broker, BrokerPresence {
  readonly name = 'memory';
  private readonly listeners = new Map<string, BrokerListener>();
  private readonly presenceSources = new Set<PresenceSource>();
  private closed = false;

  publish(channel: string, event: SseEvent): Promise<void> {
    if (this.closed) return Promise.reject(new BrokerUnavailableError(this.name, 'the memory broker is closed'));
    const listener = this.listeners.get(channel);
    if (listener !== undefined) queueMicrotask(() => listener(event));
    return Promise.resolve();
  }

  subscribe(channel: string, listener: BrokerListener): Promise<void> {
    this.listeners.set(channel, listener);
    return Promise.resolve();
  }

  unsubscribe(channel: string): Promise<void> {
    this.listeners.delete(channel);
    return Promise.resolve();
  }

  /** Presence capability: the other hubs sharing this broker, read live (nothing to refresh or expire). */
  trackPresence(source: PresenceSource): PresenceHandle {
    this.presenceSources.add(source);
    return {
      readOthers: (channel) => {
        const reading: PresenceReading = { processes: 0, channels: new Map<string, ChannelPresence>() };
        for (const other of this.presenceSources) {
          if (other === source) continue;
          reading.processes++;
          for (const [name, presence] of other.snapshot()) {
            if (channel === undefined || name === channel) addPresence(reading.channels, name, presence);
          }
        }
        return Promise.resolve(reading);
      },
      stop: () => {
        this.presenceSources.delete(source);
      },
    };
  }

  /** Channels with a subscriber; for tests and stats. */
  subscriptions(): string[] {
    return [...this.listeners.keys()];
  }

  close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    this.presenceSources.clear();
    return Promise.resolve();
  }
}
