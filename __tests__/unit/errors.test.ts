// core/errors.ts: every error sse-hub throws on purpose has a stable code and, for HTTP, a status.
import {
  BrokerUnavailableError,
  ChannelNameError,
  EventError,
  HttpError,
  isSseHubError,
  OptionError,
  SessionStoreUnavailableError,
  SseHubError,
  UsageError,
} from '../../src/core/errors';

test('ChannelNameError: a TypeError, status 400, default and custom codes', () => {
  const err = new ChannelNameError('bad');
  expect(err).toBeInstanceOf(TypeError);
  expect(err).toMatchObject({ name: 'ChannelNameError', code: 'SSE_ERR_CHANNEL_NAME', status: 400, message: 'bad' });
  expect(new ChannelNameError('x', 'SSE_ERR_TOO_MANY_CHANNELS').code).toBe('SSE_ERR_TOO_MANY_CHANNELS');
});

test('EventError and OptionError are TypeErrors with their codes', () => {
  expect(new EventError('e')).toMatchObject({ name: 'EventError', code: 'SSE_ERR_EVENT', status: 400 });
  expect(new EventError('e')).toBeInstanceOf(TypeError);
  expect(new OptionError('o')).toMatchObject({ name: 'OptionError', code: 'SSE_ERR_OPTION' });
  expect(new OptionError('o')).toBeInstanceOf(TypeError);
});

test('BrokerUnavailableError names the broker, answers 503 and keeps the cause', () => {
  const cause = new Error('ECONNREFUSED');
  const err = new BrokerUnavailableError('redis', 'the redis broker is down', { cause });
  expect(err).toBeInstanceOf(SseHubError);
  expect(err).toMatchObject({
    name: 'BrokerUnavailableError',
    code: 'SSE_ERR_BROKER_UNAVAILABLE',
    status: 503,
    broker: 'redis',
    cause,
  });
});

test('HttpError carries its status and code', () => {
  expect(new HttpError(403, 'no', 'SSE_ERR_FORBIDDEN')).toMatchObject({
    name: 'HttpError',
    status: 403,
    code: 'SSE_ERR_FORBIDDEN',
  });
  expect(new HttpError(400, 'bad').code).toBe('SSE_ERR_BAD_REQUEST');
});

test('HttpError takes a distinct code from its status when none is given', () => {
  expect(new HttpError(401, 'x').code).toBe('SSE_ERR_UNAUTHORIZED');
  expect(new HttpError(403, 'x').code).toBe('SSE_ERR_FORBIDDEN');
  expect(new HttpError(405, 'x').code).toBe('SSE_ERR_METHOD_NOT_ALLOWED');
  expect(new HttpError(413, 'x').code).toBe('SSE_ERR_PAYLOAD_TOO_LARGE');
  expect(new HttpError(415, 'x').code).toBe('SSE_ERR_UNSUPPORTED_MEDIA_TYPE');
});

test('one root: every error is an SseHubError; input errors stay TypeErrors, the rest do not', () => {
  const input = [new ChannelNameError('x'), new EventError('x'), new OptionError('x'), new UsageError('x')];
  const operational = [
    new BrokerUnavailableError('redis', 'x'),
    new SessionStoreUnavailableError('x'),
    new HttpError(403, 'x'),
    new SseHubError('SSE_ERR_HUB_CLOSED', 'x', 503),
  ];
  for (const err of [...input, ...operational]) expect(err).toBeInstanceOf(SseHubError);
  for (const err of input) expect(err).toBeInstanceOf(TypeError);
  for (const err of operational) expect(err).not.toBeInstanceOf(TypeError);
  // Subclass checks stay exact.
  expect(new EventError('x')).not.toBeInstanceOf(ChannelNameError);
  expect(new HttpError(403, 'x')).not.toBeInstanceOf(BrokerUnavailableError);
  expect(new TypeError('x')).not.toBeInstanceOf(SseHubError);
});

test('a session store outage has its own code, not the broker one', () => {
  expect(new SessionStoreUnavailableError('down')).toMatchObject({
    name: 'SessionStoreUnavailableError',
    code: 'SSE_ERR_SESSION_STORE_UNAVAILABLE',
    status: 503,
  });
});

test('isSseHubError recognises all of them and nothing else', () => {
  for (const err of [
    new ChannelNameError('x'),
    new EventError('x'),
    new OptionError('x'),
    new BrokerUnavailableError('memory', 'x'),
    new HttpError(400, 'x'),
  ]) {
    expect(isSseHubError(err)).toBe(true);
  }
  for (const other of [new TypeError('x'), new Error('x'), { code: 'SSE_ERR_EVENT' }, null, 'x']) {
    expect(isSseHubError(other)).toBe(false);
  }
});
