// A history read races the live subscription: both a resuming connection
// (core/replay.ts) and the hub after a broker outage (core/catch-up.ts) read
// history while live events keep arriving. Invariant: whatever a read
// delivered, its live copy is dropped — and nothing newer ever is.
import type { HistorySnapshot } from './broker.js';
import { compareIdParts, type EventIdParts } from './history.js';

/** Backoff between failed reads: 100 ms doubling to 2 s, as a new broker subscription retries. */
export function readBackoffMs(attempt: number): number {
  return Math.min(100 * 2 ** attempt, 2000);
}

/**
 * Reads history until it succeeds. While the broker is down the read fails:
 * it is retried with backoff for as long as `keepTrying()` says, which is
 * asked before every attempt. Undefined when it gave up.
 */
export async function readHistoryWithRetry(
  read: () => Promise<HistorySnapshot>,
  keepTrying: () => boolean,
  onError: (err: unknown) => void,
): Promise<HistorySnapshot | undefined> {
  for (let attempt = 0; keepTrying(); attempt++) {
    try {
      return await read();
    } catch (err) {
      onError(err);
      await new Promise((resolve) => setTimeout(resolve, readBackoffMs(attempt)));
    }
  }
  return undefined;
}

/**
 * True when an event with `id` is new after `newest`, the newest id already
 * written. An event without an sse-hub id is live-only (never part of a read)
 * and so always new.
 */
export function isNewer(id: EventIdParts | undefined, newest: EventIdParts | undefined): boolean {
  return id === undefined || newest === undefined || compareIdParts(id, newest) > 0;
}

/**
 * "Drop live copies at or below this id", per key (a connection, or the whole
 * hub). A history read and the live PUBLISH travel on different broker
 * connections, so an event can be in the read and still arrive live
 * afterwards. Ids arrive live in id order (one script issues the id and
 * publishes), so the first live event above a floor removes it for good.
 */
export class IdFloors<K> {
  private readonly floors = new Map<K, EventIdParts>();

  /** Keys that still drop copies; 0 on the fast path. */
  get size(): number {
    return this.floors.size;
  }

  /** From now on `key` drops live events with an id at or below `id`. */
  set(key: K, id: EventIdParts): void {
    this.floors.set(key, id);
  }

  delete(key: K): void {
    this.floors.delete(key);
  }

  /**
   * A live event with history id `id` arrives: every floor below it is gone.
   * Afterwards `drops(key)` tells whether `key` must skip this event.
   */
  pass(id: EventIdParts): void {
    for (const [key, floor] of this.floors) {
      if (compareIdParts(id, floor) > 0) this.floors.delete(key);
    }
  }

  /** True while `key` has a floor: the event just passed is a copy for it. */
  drops(key: K): boolean {
    return this.floors.has(key);
  }
}
