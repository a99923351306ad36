// core/broker.ts: the optional capabilities are found by shape, so a broker of
// one's own gets /healthz, history, /metrics counters and session mode by
// implementing the members, and a broker without them is left alone.
import {
  hasCounters,
  hasHealth,
  hasHistory,
  hasSessionKeys,
  type Broker,
  type BrokerCounters,
  type BrokerHealth,
  type BrokerHistory,
  type BrokerSessionKeys,
  type SessionKeyReader,
} from '../../src/core/broker';
import { MemoryBroker } from '../../src/brokers/memory';

const bare: Broker = {
  name: 'bare',
  publish: () => Promise.resolve(),
  subscribe: () => Promise.resolve(),
  unsubscribe: () => Promise.resolve(),
  close: () => Promise.resolve(),
};
const keys: SessionKeyReader = { isReady: true, mGet: (k) => Promise.resolve(k.map(() => null)) };
const full: Broker & BrokerHealth & BrokerHistory & BrokerCounters & BrokerSessionKeys = {
  ...bare,
  isHealthy: () => true,
  onHealthChange: () => () => undefined,
  publishWithHistory: () => Promise.resolve('1-0'),
  readHistory: () => Promise.resolve({ channels: new Map(), lastId: '1-0' }),
  counters: { badPayloads: 0, reconnects: 0 },
  sessionKeys: keys,
};

test.each([
  ['hasHealth', hasHealth],
  ['hasHistory', hasHistory],
  ['hasCounters', hasCounters],
  ['hasSessionKeys', hasSessionKeys],
])('%s: true for a broker with the members, false for one without (the memory broker)', (_name, has) => {
  expect(has(full)).toBe(true);
  expect(has(bare)).toBe(false);
  expect(has(new MemoryBroker())).toBe(false);
});

test('a half-implemented capability does not count', () => {
  expect(hasHealth({ ...bare, isHealthy: () => true } as Broker)).toBe(false);
  expect(hasCounters({ ...bare, counters: null } as unknown as Broker)).toBe(false);
});
