// The one small interface every broker implements (README "Writing a broker"),
// plus optional capabilities detected with type guards. A broker without the
// health capability is always healthy.
import type { SseEvent } from './event.js';

/** Receives every event published on one channel, already decoded. */
export type BrokerListener = (event: SseEvent) => void;

export interface Broker {
  /** Short name used in errors, logs and /healthz: `memory`, `redis`, ... */
  readonly name: string;
  /**
   * Hands an event to the broker for every process subscribed to `channel`.
   * Resolves once the broker has accepted it; rejects with
   * BrokerUnavailableError when it cannot. The hub bounds the wait.
   */
  publish(channel: string, event: SseEvent): Promise<void>;
  /**
   * Starts delivering `channel`'s events to `listener`. The hub calls this once
   * per channel (reference counted) and never twice without an unsubscribe in
   * between. It must keep the subscription across reconnects.
   */
  subscribe(channel: string, listener: BrokerListener): Promise<void>;
  /** Stops delivering `channel`. */
  unsubscribe(channel: string): Promise<void>;
  /** Releases every connection; later publishes reject. */
  close(): Promise<void>;
}

/** Optional capability: whether events can flow right now (SPEC §4 /healthz). */
export interface BrokerHealth {
  /** True while the broker's subscription connection is up. */
  isHealthy(): boolean;
  /**
   * Calls `listener` whenever health changes. Returns a function that removes it.
   */
  onHealthChange(listener: (healthy: boolean) => void): () => void;
}

export function hasHealth(broker: Broker): broker is Broker & BrokerHealth {
  const candidate = broker as Partial<BrokerHealth>;
  return typeof candidate.isHealthy === 'function' && typeof candidate.onHealthChange === 'function';
}
