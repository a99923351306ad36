// A stand-in for the BrokerHistory capability in pure unit tests: kept events
// per channel, a settable horizon, reads that can fail or wait on a gate.
import type { BrokerHistory, ChannelHistory, HistoryLimits, HistoryPage, HistorySnapshot } from '../../src/core/broker';
import type { SseEvent } from '../../src/core/event';
import { compareIds, isHistoryId } from '../../src/core/history';

export class FakeHistory implements BrokerHistory {
  /** Channel → kept events, oldest first, each with an id. */
  readonly kept = new Map<string, SseEvent[]>();
  /** Channel → its horizon (every event after it is kept); '0-0' when unset. */
  readonly horizons = new Map<string, string>();
  lastId = '0-0';
  /** The next this many reads reject, as while the broker is down. */
  failures = 0;
  /** Each read's `after` map, in order. */
  readonly reads: Map<string, string>[] = [];
  /** Events each read returned, over all its channels. */
  readonly returned: number[] = [];
  /** Runs after a read looked and before it answers (to change history between pages). */
  afterRead: ((read: number) => void) | undefined;
  /** When set, reads wait for it before looking. */
  gate: Promise<void> | undefined;

  keep(channel: string, ...ids: string[]): SseEvent[] {
    const events = ids.map((id) => ({ event: 'message', data: `${channel}:${id}`, id }));
    this.kept.set(channel, [...(this.kept.get(channel) ?? []), ...events]);
    for (const id of ids) if (compareIds(id, this.lastId) > 0) this.lastId = id;
    return events;
  }

  publishWithHistory(): Promise<string> {
    return Promise.reject(new Error('not used by these tests'));
  }

  /** Drops a channel's oldest kept events, moving its horizon as a trim does. */
  trim(channel: string, count: number): void {
    const kept = this.kept.get(channel) ?? [];
    const dropped = kept.splice(0, count);
    const last = dropped[dropped.length - 1];
    if (last !== undefined) this.horizons.set(channel, last.id as string);
  }

  async readHistory(
    after: ReadonlyMap<string, string>,
    _limits?: HistoryLimits,
    page?: HistoryPage,
  ): Promise<HistorySnapshot> {
    this.reads.push(new Map(after));
    if (this.failures > 0) {
      this.failures--;
      throw new Error('broker down');
    }
    if (this.gate !== undefined) await this.gate;
    const channels = new Map<string, ChannelHistory>();
    let returned = 0;
    for (const [channel, afterId] of after) {
      const kept = this.kept.get(channel) ?? [];
      // Like XRANGE: nothing comes after an id beyond every id issued.
      const all = isHistoryId(afterId) ? kept.filter((e) => compareIds(e.id as string, afterId) > 0) : [];
      const events = page === undefined ? all : all.slice(0, page.count);
      returned += events.length;
      channels.set(channel, {
        events,
        oldestId: kept[0]?.id ?? null,
        horizon: this.horizons.get(channel) ?? '0-0',
        more: events.length < all.length,
      });
    }
    this.returned.push(returned);
    // The last id as of the look, as one Redis script sees it; not what afterRead adds.
    const lastId = this.lastId;
    this.afterRead?.(this.reads.length);
    return { channels, lastId };
  }
}
