// A stand-in for the BrokerHistory capability in pure unit tests: kept events
// per channel, a settable horizon, reads that can fail or wait on a gate.
import type { BrokerHistory, ChannelHistory, HistorySnapshot } from '../../src/core/broker';
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

  async readHistory(after: ReadonlyMap<string, string>): Promise<HistorySnapshot> {
    this.reads.push(new Map(after));
    if (this.failures > 0) {
      this.failures--;
      throw new Error('broker down');
    }
    if (this.gate !== undefined) await this.gate;
    const channels = new Map<string, ChannelHistory>();
    for (const [channel, afterId] of after) {
      const kept = this.kept.get(channel) ?? [];
      channels.set(channel, {
        // Like XRANGE: nothing comes after an id beyond every id issued.
        events: isHistoryId(afterId) ? kept.filter((e) => compareIds(e.id as string, afterId) > 0) : [],
        oldestId: kept[0]?.id ?? null,
        horizon: this.horizons.get(channel) ?? '0-0',
      });
    }
    return { channels, lastId: this.lastId };
  }
}
