// core/positions.ts: ids ordered per channel only (Redis Cluster). The
// position list a stream on several channels gets as its id, how a resume
// reads it back, and the hub's side: live copies dropped per channel, a fresh
// stream starting at each channel's newest id, and a replay resuming each
// channel from its own position whatever the clocks behind the ids.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BrokerChannelIds } from '../../src/core/broker';
import { Connection } from '../../src/core/connection';
import { parseEventId, type EventIdParts } from '../../src/core/history';
import { silentLogger } from '../../src/core/logger';
import { ChannelPositions, EventFrames, formatPositions, parsePositions, resumePoints } from '../../src/core/positions';
import { Replays, type ReplayPort } from '../../src/core/replay';
import { FakeHistory } from '../helpers/fake-history';
import { FakeResponse } from '../helpers/fake-response';

const req = { httpVersionMajor: 1, httpVersionMinor: 1, socket: { destroyed: false } } as unknown as IncomingMessage;
const id = (text: string): EventIdParts => parseEventId(text) as EventIdParts;

class FakeChannelIds implements BrokerChannelIds {
  readonly idsPerChannel = true;
  readonly marks = new Map<string, string>();
  channelLastId(channel: string): string | undefined {
    return this.marks.get(channel);
  }
}

function open(channels: string[]): { res: FakeResponse; connection: Connection } {
  const res = new FakeResponse();
  const connection = new Connection(
    req,
    res as unknown as ServerResponse,
    channels,
    { retry: 3000, maxBufferedBytes: 1 << 20 },
    { tick: 0 },
    () => undefined,
  );
  return { res, connection };
}

/** Each frame written as `<id>|<data>` (no id: `-|<data>`). */
function frames(res: FakeResponse): string[] {
  return res
    .text()
    .split('\n\n')
    .filter((block) => /^data: /m.test(block))
    .map((block) => `${/^id: (.*)$/m.exec(block)?.[1] ?? '-'}|${/^data: (.*)$/m.exec(block)?.[1] as string}`);
}

describe('the position list', () => {
  test('lists the stream’s channels in its own order, leaving out those with no position yet', () => {
    const positions = new Map([
      ['user:bob', id('20-3')],
      ['all', id('1000-0')],
    ]);
    expect(formatPositions(['all', 'news', 'user:bob'], positions)).toBe('all=1000-0,user:bob=20-3');
  });

  test('parses back what it formats; anything else is not a list', () => {
    expect(parsePositions('all=1000-0,user:bob=20-3')).toEqual(
      new Map([
        ['all', [1000, 0]],
        ['user:bob', [20, 3]],
      ]),
    );
    for (const junk of ['1000-0', '', 'all=', '=1-0', 'all=1-0,', 'all=x', 'a b=1-0', 'all=1-0,all=2-0', 'all=1-0=2']) {
      expect(parsePositions(junk)).toBeUndefined();
    }
  });

  test('resume points: a list per channel, the least listed id for a channel it leaves out; a plain id for all', () => {
    expect(resumePoints(['all', 'news', 'mine'], 'mine=50-0,all=70-1')).toEqual(
      new Map([
        ['all', [70, 1]],
        ['news', [50, 0]],
        ['mine', [50, 0]],
      ]),
    );
    expect(resumePoints(['all', 'mine'], '9-2')).toEqual(
      new Map([
        ['all', [9, 2]],
        ['mine', [9, 2]],
      ]),
    );
    expect(resumePoints(['all'], 'junk')).toBeUndefined();
  });

  test('frames: the shared one keeps the event’s id; a list goes in front of the same body', () => {
    const event = { event: 'note', data: 'a\nb', id: '5-0' };
    const built = new EventFrames(event);
    expect(built.shared()).toBe(built.shared()); // built once
    expect(built.shared().toString()).toBe('id: 5-0\nevent: note\ndata: a\ndata: b\n\n');
    expect(built.withPositions('all=5-0,b=1-0').toString()).toBe(
      'id: all=5-0,b=1-0\nevent: note\ndata: a\ndata: b\n\n',
    );
  });
});

describe('ChannelPositions', () => {
  test('a live copy is dropped per channel: another channel’s greater id does not end it', () => {
    const positions = new ChannelPositions(new FakeChannelIds());
    expect(positions.isCopy('a', id('100-0'))).toBe(false);
    expect(positions.isCopy('b', id('5-0'))).toBe(false); // a slower publisher's clock: still new on b
    expect(positions.isCopy('a', id('100-0'))).toBe(true);
    expect(positions.isCopy('b', id('4-9'))).toBe(true);
    expect(positions.lastDelivered('b')).toBe('5-0');
    positions.forget('b');
    expect(positions.isCopy('b', id('4-9'))).toBe(false);
  });

  test('a fresh stream starts at each channel’s newest id; the list follows every event it gets', () => {
    const broker = new FakeChannelIds();
    broker.marks.set('b', '0-0'); // b has no event yet
    const positions = new ChannelPositions(broker);
    positions.isCopy('a', id('100-0'));
    const { res, connection } = open(['a', 'b']);
    positions.start(connection);
    const event = (n: string) => ({ event: 'message', data: n, id: n });
    for (const [channel, n] of [
      ['b', '7-0'], // from a publisher whose clock is far behind a's
      ['a', '101-0'],
      ['a', '100-0'], // a copy (a replay read ahead of the live PUBLISH): skipped
    ] as const) {
      positions.write(connection, channel, id(n), new EventFrames(event(n)), false);
    }
    expect(frames(res)).toEqual(['a=100-0,b=7-0|7-0', 'a=101-0,b=7-0|101-0']);
  });

  test('a stream on one channel keeps the shared frame and its plain id', () => {
    const positions = new ChannelPositions(new FakeChannelIds());
    const { res, connection } = open(['a']);
    positions.start(connection);
    const built = new EventFrames({ event: 'message', data: 'x', id: '3-0' });
    positions.write(connection, 'a', id('3-0'), built, false);
    positions.write(connection, 'a', id('3-0'), built, false);
    expect(frames(res)).toEqual(['3-0|x']);
  });
});

describe('a replay with per-channel ids', () => {
  class Port implements ReplayPort {
    subscribe = (): Promise<void> => Promise.resolve();
    listen = (): void => undefined;
    release = (): void => undefined;
    lastReceivedId = (): EventIdParts | undefined => undefined;
    whenCaughtUp = (): Promise<void> | undefined => undefined;
    closed = (): boolean => false;
  }

  test('each channel resumes after its own position, whatever the other channel’s clock says', async () => {
    const history = new FakeHistory();
    const positions = new ChannelPositions(new FakeChannelIds());
    const replays = new Replays(new Port(), {
      history,
      limits: { size: 100, ttl: 600 },
      logger: silentLogger,
      stallTimeout: 30_000,
      positions,
    });
    // `fast` is published by a process whose clock is an hour ahead of `slow`'s.
    history.keep('fast', '3600000-0', '3600001-0', '3600002-0');
    history.keep('slow', '10-0', '11-0', '12-0');
    const { res, connection } = open(['fast', 'slow']);
    // The client got fast up to 3600000-0 and slow up to 11-0; with one plain
    // id it would see 3600001-0 again (or miss 12-0).
    await replays.resume(connection, 'fast=3600000-0,slow=11-0');
    expect(frames(res)).toEqual([
      'fast=3600000-0,slow=12-0|slow:12-0',
      'fast=3600001-0,slow=12-0|fast:3600001-0',
      'fast=3600002-0,slow=12-0|fast:3600002-0',
    ]);
    expect(history.reads[0]).toEqual(
      new Map([
        ['fast', '3600000-0'],
        ['slow', '11-0'],
      ]),
    );
    // Live copies of what the replay wrote are skipped; the next is written.
    positions.write(
      connection,
      'slow',
      id('12-0'),
      new EventFrames({ event: 'message', data: 'again', id: '12-0' }),
      false,
    );
    positions.write(
      connection,
      'slow',
      id('13-0'),
      new EventFrames({ event: 'message', data: 'next', id: '13-0' }),
      false,
    );
    expect(frames(res).slice(3)).toEqual(['fast=3600002-0,slow=13-0|next']);
  });
});
