// brokers/redis-presence.ts, the pure parts: a record's encoding round-trips,
// a malformed value from Redis (another version, a hand edit) is skipped
// rather than trusted, and the keys share one cluster hash tag.
import { decodePresence, encodePresence, presenceKeys, recordArgs } from '../../src/brokers/redis-presence';

test('a channel presence round-trips through its stored form', () => {
  const presence = { connections: 3, users: ['alice', 'bob'] };
  expect(encodePresence(presence)).toBe('[3,["alice","bob"]]');
  expect(decodePresence(encodePresence(presence))).toEqual(presence);
});

test('malformed stored values are skipped, and non-string users dropped', () => {
  for (const bad of ['', 'nope', '{}', '[1]', '["3",[]]', '[3,"bob"]', 'null'])
    expect(decodePresence(bad)).toBeUndefined();
  expect(decodePresence('[2,["bob",7,null]]')).toEqual({ connections: 2, users: ['bob'] });
});

test('one field and value per channel', () => {
  const snapshot = new Map([
    ['a', { connections: 1, users: [] }],
    ['b', { connections: 2, users: ['x'] }],
  ]);
  expect(recordArgs(snapshot)).toEqual(['a', '[1,[]]', 'b', '[2,["x"]]']);
});

test('the registry and the records share one hash tag, under the channel prefix', () => {
  const keys = presenceKeys('app:');
  expect(keys.registry).toBe('app:{sse-hub:presence}');
  expect(keys.record('host:1:ab')).toBe('app:{sse-hub:presence}:host:1:ab');
});
