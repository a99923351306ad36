// core/errors.ts: every error sse-hub throws on purpose has a stable code and, for HTTP, a status.
import {
  BrokerUnavailableError,
  ChannelNameError,
  EventError,
  HttpError,
  isSseHubError,
  OptionError,
  SseHubError,
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
