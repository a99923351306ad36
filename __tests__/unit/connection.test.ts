// core/connection.ts with a fake response: headers, preamble, the
// maxBufferedBytes bound, clean end vs. destroy, and the close callback.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Connection } from '../../src/core/connection';
import { FakeResponse } from '../helpers/fake-response';

function make(options: { minor?: number; gone?: boolean; maxBufferedBytes?: number } = {}) {
  const req = {
    httpVersionMajor: 1,
    httpVersionMinor: options.minor ?? 1,
    socket: { destroyed: options.gone ?? false },
  } as unknown as IncomingMessage;
  const res = new FakeResponse();
  if (options.gone) res.destroyed = true;
  const closed: Connection[] = [];
  const connection = new Connection(
    req,
    res as unknown as ServerResponse,
    ['all'],
    { retry: 3000, maxBufferedBytes: options.maxBufferedBytes ?? 1000 },
    { tick: 0 },
    (c) => closed.push(c),
  );
  return { connection, res, closed };
}

test('writes the documented headers and the preamble at once', () => {
  const { res, connection } = make();
  expect(res.status).toBe(200);
  expect(res.headers).toMatchObject({ Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
  expect(Buffer.concat(res.chunks).toString()).toBe('retry: 3000\n: sse-hub\n\n');
  expect(connection.open).toBe(true);
});

test('no Connection: keep-alive header on HTTP/1.0', () => {
  expect(make({ minor: 0 }).res.headers).not.toHaveProperty('Connection');
});

test('a client that left before the stream opened is closed at once', () => {
  const { connection, closed } = make({ gone: true });
  expect(connection.open).toBe(false);
  expect(connection.closeReason).toBe('client');
  expect(closed).toEqual([connection]);
});

test('write: the same Buffer is written; false once closed', () => {
  const { connection, res } = make();
  const frame = Buffer.from('event: m\ndata: x\n\n');
  expect(connection.write(frame)).toBe(true);
  expect(res.chunks[1]).toBe(frame);
  res.emit('close');
  expect(connection.closeReason).toBe('client');
  expect(connection.write(frame)).toBe(false);
  expect(res.chunks).toHaveLength(2);
});

test('past maxBufferedBytes the next write destroys the stream (reason slow)', () => {
  const { connection, res, closed } = make({ maxBufferedBytes: 10 });
  res.writableLength = 10;
  expect(connection.write(Buffer.from('a'))).toBe(true); // at the bound: still written
  res.writableLength = 11;
  expect(connection.write(Buffer.from('b'))).toBe(false);
  expect(res.destroyed).toBe(true);
  expect(connection.closeReason).toBe('slow');
  expect(closed).toEqual([connection]); // once, although 'close' followed
});

test('end() ends cleanly, once', () => {
  const { connection, res, closed } = make();
  connection.end('hub-closed');
  connection.end('server');
  expect(res.ended).toBe(true);
  expect(res.destroyed).toBe(false);
  expect(connection.closeReason).toBe('hub-closed');
  expect(closed).toHaveLength(1);
});
