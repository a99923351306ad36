// http/connection-limits.ts: the per-address key and the slot accounting
// (the caps against real clients are in integration/connection-limits.test.ts).
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { addressKey, clientAddress, ConnectionLimiter } from '../../src/http/connection-limits';

const request = (remoteAddress: string, ip?: string): IncomingMessage =>
  ({ socket: { remoteAddress }, ...(ip === undefined ? {} : { ip }) }) as unknown as IncomingMessage;
const response = (): ServerResponse & EventEmitter =>
  Object.assign(new EventEmitter(), { destroyed: false }) as unknown as ServerResponse & EventEmitter;

test('addressKey: IPv4 as is, IPv4-mapped IPv6 as IPv4, IPv6 by its /64', () => {
  expect(addressKey('203.0.113.9')).toBe('203.0.113.9');
  expect(addressKey('::ffff:203.0.113.9')).toBe('203.0.113.9');
  expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
  expect(addressKey('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
  expect(addressKey('2001:0DB8:0001:0002::9')).toBe('2001:db8:1:2::/64');
  expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
  expect(addressKey('::1')).toBe('0:0:0:0::/64');
  expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
  expect(addressKey('64:ff9b::192.0.2.1')).toBe('64:ff9b:0:0::/64');
  expect(addressKey('unknown')).toBe('unknown');
});

test("clientAddress: Express's req.ip when present, else the socket's address", () => {
  expect(clientAddress(request('127.0.0.1', '203.0.113.9'))).toBe('203.0.113.9');
  expect(clientAddress(request('127.0.0.1'))).toBe('127.0.0.1');
  expect(clientAddress(request('127.0.0.1', ''))).toBe('127.0.0.1');
});

test('slots are taken per stream and given back once, when the response closes', () => {
  const limiter = new ConnectionLimiter({ maxConnections: 3, maxConnectionsPerIp: 2, retry: 1000 });
  const a1 = response();
  const a2 = response();
  expect(limiter.admit(request('10.0.0.1'), a1)).toBeUndefined();
  expect(limiter.admit(request('10.0.0.1'), a2)).toBeUndefined();
  expect(limiter.admit(request('10.0.0.1'), response())).toBe('max-connections-per-ip');
  expect(limiter.admit(request('10.0.0.2'), response())).toBeUndefined();
  expect(limiter.admit(request('10.0.0.3'), response())).toBe('max-connections');
  a1.emit('close');
  a1.emit('close'); // twice: still one slot back
  expect(limiter.stats()).toMatchObject({ open: 2, addresses: 2 });
  expect(limiter.admit(request('10.0.0.1'), response())).toBeUndefined();
  a2.emit('close');
  expect(limiter.stats()).toMatchObject({ open: 2 });
});

test('0 turns a cap off', () => {
  const limiter = new ConnectionLimiter({ maxConnections: 0, maxConnectionsPerIp: 0, retry: 1000 });
  for (let i = 0; i < 100; i++) expect(limiter.admit(request('10.0.0.1'), response())).toBeUndefined();
  expect(limiter.stats()).toMatchObject({ open: 100, addresses: 0 });
});

test('a child limiter (a middleware with caps of its own) takes a slot in both; refusals count in the parent', () => {
  const hub = new ConnectionLimiter({ maxConnections: 3, maxConnectionsPerIp: 0, retry: 1000 });
  const child = new ConnectionLimiter({ maxConnections: 2, maxConnectionsPerIp: 0, retry: 1000 }, hub);
  const first = response();
  expect(child.admit(request('10.0.0.1'), first)).toBeUndefined();
  expect(child.admit(request('10.0.0.1'), response())).toBeUndefined();
  expect(child.admit(request('10.0.0.1'), response())).toBe('max-connections'); // the child's cap
  expect(hub.stats().open).toBe(2);
  expect(hub.admit(request('10.0.0.1'), response())).toBeUndefined(); // the hub's last slot, elsewhere
  first.emit('close');
  expect(child.stats().open).toBe(1);
  expect(hub.admit(request('10.0.0.2'), response())).toBeUndefined(); // the hub is full again
  // The child has room again, the hub has not: refused, and the child's slot is not kept.
  expect(child.admit(request('10.0.0.1'), response())).toBe('max-connections');
  expect(child.stats().open).toBe(1);
  child.refuse(
    request('10.0.0.1'),
    Object.assign(response(), {
      headersSent: false,
      writeHead: () => undefined,
      flushHeaders: () => undefined,
      end: () => undefined,
    }) as never,
    'max-connections',
  );
  expect(hub.stats().refused['max-connections']).toBe(1);
});
