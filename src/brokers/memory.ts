// MemoryBroker: same-process fan-out with no set-up (SPEC §1). Delivery runs
// in a microtask so a publisher never re-enters the hub mid-callback, and
// events on one channel keep their order.
import type { Broker, BrokerListener } from '../core/broker.js';
import { BrokerUnavailableError } from '../core/errors.js';
import type { SseEvent } from '../core/event.js';

export class MemoryBroker implements Broker {
  readonly name = 'memory';
  private readonly listeners = new Map<string, BrokerListener>();
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

  /** Channels with a subscriber; for tests and stats. */
  subscriptions(): string[] {
    return [...this.listeners.keys()];
  }

  close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    return Promise.resolve();
  }
}
