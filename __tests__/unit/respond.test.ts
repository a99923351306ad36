// http/respond.ts: the one way an error leaves over HTTP — JSON { "error": ... };
// unexpected errors are logged in full and answered generically.
import type { ServerResponse } from 'node:http';
import { BrokerUnavailableError, ChannelNameError, HttpError } from '../../src/core/errors';
import type { Logger } from '../../src/core/logger';
import { sendError, sendJson, sendJsonError } from '../../src/http/respond';

interface FakeRes {
  status?: number;
  headers?: Record<string, string | number>;
  body?: string;
  headersSent: boolean;
  destroyed: boolean;
}

function fakeRes(headersSent = false): FakeRes & ServerResponse {
  const res: FakeRes = { headersSent, destroyed: false };
  Object.assign(res, {
    writeHead(status: number, headers: Record<string, string | number>) {
      res.status = status;
      res.headers = headers;
      res.headersSent = true;
      return res;
    },
    end(body: string) {
      res.body = body;
    },
    destroy() {
      res.destroyed = true;
    },
  });
  return res as FakeRes & ServerResponse;
}

function fakeLogger(): Logger & { calls: [string, string, unknown][] } {
  const calls: [string, string, unknown][] = [];
  const at = (level: string) => (message: string, meta?: unknown) => calls.push([level, message, meta]);
  return { calls, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

test('sendJson: status, JSON content type, length, no-store', () => {
  const res = fakeRes();
  sendJson(res, 202, { id: 'é' });
  expect(res.status).toBe(202);
  expect(res.headers).toMatchObject({
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength('{"id":"é"}'),
    'Cache-Control': 'no-store',
  });
  expect(res.body).toBe('{"id":"é"}');
});

test('sendJsonError: { error } with extra headers', () => {
  const res = fakeRes();
  sendJsonError(res, 405, 'use GET', { Allow: 'GET' });
  expect(res.status).toBe(405);
  expect(res.headers).toMatchObject({ Allow: 'GET' });
  expect(JSON.parse(res.body as string)).toEqual({ error: 'use GET' });
});

test('once headers are sent (a stream is open), the connection is destroyed instead', () => {
  const res = fakeRes(true);
  sendJsonError(res, 400, 'x');
  expect(res.destroyed).toBe(true);
  expect(res.body).toBeUndefined();
});

test.each([
  [new ChannelNameError('x'), 400],
  [new HttpError(403, 'x'), 403],
  [new BrokerUnavailableError('redis', 'x'), 503],
  [new Error('x'), 500],
  [{ status: 400, message: 'x' }, 500],
])('sendError answers %p with its own status (ours) or 500 (anything else)', (err, status) => {
  const res = fakeRes();
  sendError(res, err, fakeLogger());
  expect(res.status).toBe(status);
});

describe('sendError', () => {
  test('a 4xx error of ours: its status and message, nothing logged', () => {
    const res = fakeRes();
    const logger = fakeLogger();
    sendError(res, new ChannelNameError('channel "a b" is not a valid channel name'), logger);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body as string)).toEqual({ error: 'channel "a b" is not a valid channel name' });
    expect(logger.calls).toEqual([]);
  });

  test('a 5xx error of ours: its status and message, logged as a warning', () => {
    const res = fakeRes();
    const logger = fakeLogger();
    sendError(res, new BrokerUnavailableError('redis', 'the redis broker is not connected'), logger);
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body as string)).toEqual({ error: 'the redis broker is not connected' });
    expect(logger.calls.map((c) => c[0])).toEqual(['warn']);
  });

  test('anything else: a generic 500 that leaks nothing, the full error logged', () => {
    const res = fakeRes();
    const logger = fakeLogger();
    sendError(res, new Error('password=hunter2 at /srv/secret.js'), logger);
    expect(res.status).toBe(500);
    expect(res.body).not.toMatch(/hunter2|secret/);
    expect(JSON.parse(res.body as string)).toEqual({ error: 'internal error; see the server log' });
    expect(logger.calls[0]?.[0]).toBe('error');
    expect(JSON.stringify(logger.calls[0]?.[2])).toContain('hunter2');
  });
});
