// core/refusals.ts: the dashboard's refusal log stays bounded however many
// refusals arrive, keeps the newest first, and counts every one by kind.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MemoryBroker } from '../../src/brokers/memory';
import { Hub } from '../../src/core/hub';
import { resolveHubOptions } from '../../src/core/options';
import { RefusalLog, REFUSALS_KEPT } from '../../src/core/refusals';
import { FakeResponse } from '../helpers/fake-response';
import { waitFor } from '../helpers/wait-for';

test('keeps the newest records, newest first, and counts all of them', () => {
  const log = new RefusalLog();
  for (let i = 0; i < 10_000; i++) log.record(i % 2 === 0 ? 'forbidden' : 'cap', `refusal ${i}`, i);
  const recent = log.recent();
  expect(recent).toHaveLength(REFUSALS_KEPT);
  expect(recent[0]).toEqual({ time: 9999, kind: 'cap', detail: 'refusal 9999' });
  expect(recent[REFUSALS_KEPT - 1]?.detail).toBe(`refusal ${10_000 - REFUSALS_KEPT}`);
  expect(log.totals()).toEqual({ forbidden: 5000, cap: 5000 });
});

test('long details are cut, and kinds past the bound count as other', () => {
  const log = new RefusalLog(4);
  log.record('forbidden', 'x'.repeat(10_000));
  expect(log.recent()[0]?.detail.length).toBeLessThanOrEqual(300);
  for (let i = 0; i < 100; i++) log.record(`kind-${i}`, 'y');
  expect(Object.keys(log.totals()).length).toBeLessThanOrEqual(33);
  expect(log.totals().other).toBeGreaterThan(0);
  expect(log.recent()).toHaveLength(4);
});

test('an empty log has no records', () => {
  expect(new RefusalLog().recent()).toEqual([]);
});

test('the hub records a slow client it cuts, with its channels and the bound', async () => {
  const broker = new MemoryBroker();
  const hub = new Hub(broker, resolveHubOptions({ broker, maxBufferedBytes: 100 }, {}));
  try {
    const res = new FakeResponse();
    const req = {
      httpVersionMajor: 1,
      httpVersionMinor: 1,
      socket: { destroyed: false },
    } as unknown as IncomingMessage;
    hub.attach(req, res as unknown as ServerResponse, ['news', 'all']);
    res.writableLength = 101;
    await hub.sendEvent('message', 'x', 'news');
    await waitFor(() => res.destroyed);
    expect(hub.refusals.recent()).toEqual([
      { time: expect.any(Number), kind: 'slow-client', detail: expect.stringMatching(/news,all.*100 bytes/) },
    ]);
  } finally {
    await hub.close();
  }
});
