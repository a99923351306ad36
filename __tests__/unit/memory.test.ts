// brokers/memory.ts: same-process fan-out. (The shared Broker contract runs in
// __tests__/integration/broker.contract.ts; this file covers what is memory's own.)
import { BrokerUnavailableError } from '../../src/core/errors';
import type { SseEvent } from '../../src/core/event';
import { MemoryBroker } from '../../src/brokers/memory';

test('delivers in a microtask, never inside publish()', async () => {
  const broker = new MemoryBroker();
  const got: SseEvent[] = [];
  await broker.subscribe('all', (e) => got.push(e));
  const sent = broker.publish('all', { event: 'm', data: '1' });
  expect(got).toEqual([]);
  await sent;
  await Promise.resolve();
  expect(got).toEqual([{ event: 'm', data: '1' }]);
});

test('keeps order per channel and only reaches that channel', async () => {
  const broker = new MemoryBroker();
  const a: string[] = [];
  const b: string[] = [];
  await broker.subscribe('a', (e) => a.push(e.data));
  await broker.subscribe('b', (e) => b.push(e.data));
  for (let i = 0; i < 5; i++) await broker.publish('a', { event: 'm', data: String(i) });
  await new Promise((resolve) => setImmediate(resolve));
  expect(a).toEqual(['0', '1', '2', '3', '4']);
  expect(b).toEqual([]);
});

test('subscriptions() follows subscribe/unsubscribe', async () => {
  const broker = new MemoryBroker();
  await broker.subscribe('a', () => undefined);
  await broker.subscribe('b', () => undefined);
  await broker.unsubscribe('a');
  expect(broker.subscriptions()).toEqual(['b']);
});

test('after close, publish rejects with BrokerUnavailableError naming memory', async () => {
  const broker = new MemoryBroker();
  await broker.close();
  await expect(broker.publish('a', { event: 'm', data: 'x' })).rejects.toThrow(BrokerUnavailableError);
  await expect(broker.publish('a', { event: 'm', data: 'x' })).rejects.toMatchObject({ broker: 'memory' });
  expect(broker.subscriptions()).toEqual([]);
});
