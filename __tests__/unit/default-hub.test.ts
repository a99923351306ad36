// default-hub.ts: configure() and django_sse-style sendEvent() on the process-wide hub.
import { configure, getDefaultHub, sendEvent } from '../../src/default-hub';
import { createHub } from '../../src/create-hub';
import { ChannelNameError } from '../../src/core/errors';
import type { Hub } from '../../src/core/hub';

let hubs: Hub[] = [];
afterEach(async () => {
  await Promise.all(hubs.map((h) => h.close()));
  hubs = [];
});

test('configure() creates the default hub; configuring again closes the previous one', async () => {
  const first = configure({ broker: 'memory' });
  hubs.push(first);
  expect(getDefaultHub()).toBe(first);
  const second = configure({ broker: 'memory' });
  hubs.push(second);
  expect(getDefaultHub()).toBe(second);
  await first.close();
  expect(first.closed).toBe(true);
  expect(second.closed).toBe(false);
});

test('configure(hub) adopts a ready hub', () => {
  const hub = createHub({ broker: 'memory' });
  hubs.push(hub);
  expect(configure(hub)).toBe(hub);
  expect(getDefaultHub()).toBe(hub);
});

test('sendEvent: channel required (TypeError), resolves once the default broker took the event', async () => {
  const hub = configure({ broker: 'memory' });
  hubs.push(hub);
  await expect(sendEvent('message', 'x', undefined as unknown as string)).rejects.toThrow(ChannelNameError);
  await expect(sendEvent('message', 'x', undefined as unknown as string)).rejects.toThrow(TypeError);
  await expect(sendEvent('message', { type: 'message' }, 'all')).resolves.toEqual({});
});

test('configure() validates options at once', () => {
  expect(() => configure({ heartbeat: 0 })).toThrow(/heartbeat must be a positive whole number/);
});
