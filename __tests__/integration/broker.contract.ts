// The Broker interface's promises (core/broker.ts), as one suite that every
// broker runs: broker-memory.test.ts and broker-redis.test.ts call it.
import type { Broker } from '../../src/core/broker';
import { BrokerUnavailableError } from '../../src/core/errors';
import type { SseEvent } from '../../src/core/event';
import { waitFor } from '../helpers/wait-for';

export interface ContractSubject {
  broker: Broker;
  /** Resolves once the broker can publish and deliver (e.g. Redis connected). */
  ready(): Promise<void>;
}

/** A listener that records what it receives and can be awaited. */
function recorder(): { events: SseEvent[]; listener: (e: SseEvent) => void; waitFor(n: number): Promise<void> } {
  const events: SseEvent[] = [];
  return {
    events,
    listener: (e) => events.push(e),
    waitFor: (n) =>
      waitFor(() => events.length >= n, { timeout: 5000, what: `${n} events (have ${events.length})` }).then(
        () => undefined,
      ),
  };
}

export function brokerContract(name: string, make: () => Promise<ContractSubject>): void {
  describe(`Broker contract: ${name}`, () => {
    let subject: ContractSubject;
    let broker: Broker;

    beforeEach(async () => {
      subject = await make();
      broker = subject.broker;
      await subject.ready();
    });

    afterEach(async () => {
      await broker.close();
    });

    test('has a short name', () => {
      expect(broker.name).toBe(name);
    });

    test('publish reaches the channel listener with event, data and id intact', async () => {
      const rec = recorder();
      await broker.subscribe('all', rec.listener);
      const events: SseEvent[] = [
        { event: 'message', data: '{"type": "message", "user": "tug"}' },
        { event: 'update', data: 'line 1\nline 2\r\n\nlast', id: '42' },
        { event: 'ünïcode', data: 'héllo ✓ 🎉' },
        { event: 'm', data: '' },
      ];
      for (const event of events) await broker.publish('all', event);
      await rec.waitFor(events.length);
      expect(rec.events).toEqual(events);
    });

    test('channels are isolated', async () => {
      const a = recorder();
      const b = recorder();
      await broker.subscribe('a', a.listener);
      await broker.subscribe('b', b.listener);
      await broker.publish('a', { event: 'm', data: 'for a' });
      await broker.publish('b', { event: 'm', data: 'for b' });
      await a.waitFor(1);
      await b.waitFor(1);
      expect(a.events.map((e) => e.data)).toEqual(['for a']);
      expect(b.events.map((e) => e.data)).toEqual(['for b']);
    });

    test('keeps the order of events on one channel', async () => {
      const rec = recorder();
      await broker.subscribe('ordered', rec.listener);
      const sent = Array.from({ length: 100 }, (_, i) => String(i));
      await Promise.all(sent.map((data) => broker.publish('ordered', { event: 'm', data })));
      await rec.waitFor(100);
      expect(rec.events.map((e) => e.data)).toEqual(sent);
    });

    test('publishing to a channel nobody listens on resolves', async () => {
      await expect(broker.publish('nobody', { event: 'm', data: 'x' })).resolves.toBeUndefined();
    });

    test('unsubscribe stops delivery; subscribing again resumes it', async () => {
      const first = recorder();
      await broker.subscribe('c', first.listener);
      await broker.unsubscribe('c');
      const probe = recorder();
      await broker.subscribe('probe', probe.listener);
      await broker.publish('c', { event: 'm', data: 'lost' });
      await broker.publish('probe', { event: 'm', data: 'after' });
      await probe.waitFor(1); // 'probe' was published after 'c', so 'c' had its chance
      expect(first.events).toEqual([]);
      const second = recorder();
      await broker.subscribe('c', second.listener);
      await broker.publish('c', { event: 'm', data: 'back' });
      await second.waitFor(1);
      expect(second.events.map((e) => e.data)).toEqual(['back']);
      expect(first.events).toEqual([]);
    });

    test('a 1 MiB event is delivered whole', async () => {
      const rec = recorder();
      await broker.subscribe('big', rec.listener);
      const data = 'x'.repeat(1024 * 1024);
      await broker.publish('big', { event: 'm', data });
      await rec.waitFor(1);
      expect(rec.events[0]?.data.length).toBe(data.length);
    });

    test('after close, publish rejects with BrokerUnavailableError naming the broker; close is idempotent', async () => {
      await broker.close();
      const err = await broker.publish('all', { event: 'm', data: 'x' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BrokerUnavailableError);
      expect(err).toMatchObject({ broker: name, code: 'SSE_ERR_BROKER_UNAVAILABLE' });
      expect((err as Error).message).toContain(name);
      await expect(broker.close()).resolves.toBeUndefined();
    });
  });
}
