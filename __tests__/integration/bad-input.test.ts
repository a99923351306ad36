// Bad input of every kind gets the documented answer — raw
// `message` delivery for bad Redis payloads, 400 JSON over HTTP — and the
// process, its open streams and other channels carry on.
import type { SseServer } from '../../src/cli/server';
import type { RedisBroker } from '../../src/brokers/redis';
import type { Logger } from '../../src/core/logger';
import type { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { getJson, SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';
import { startRedisSse, type RedisSse } from '../helpers/redis-sse';

describeWithTools(['redis-server'], 'bad input', () => {
  let redis: RedisServer;
  let sse: SseServer;
  let base: string;
  let readers: SseReader[] = [];
  const debug: [string, unknown][] = [];
  const logger: Logger = {
    debug: (message, meta) => debug.push([message, meta]),
    info: () => undefined,
    warn: () => undefined,
    error: () => undefined,
  };

  let stack: RedisSse;
  beforeAll(async () => {
    stack = await startRedisSse({}, { logger });
    ({ redis, sse, base } = stack);
  });
  afterAll(async () => {
    await stack?.stop();
  });
  afterEach(async () => {
    for (const reader of readers) reader.close();
    readers = [];
    await waitFor(() => sse.hub.stats().connections === 0, { what: 'streams to close' });
  });

  async function open(channels: string): Promise<SseReader> {
    const reader = await SseReader.open(`${base}/?channels=${channels}`);
    readers.push(reader);
    expect(reader.status).toBe(200);
    for (const channel of channels.split(',')) {
      await waitFor(async () => (await redis.numsub(channel)) === 1, { what: `SUBSCRIBE ${channel}` });
    }
    return reader;
  }

  const post = (body: string, headers: Record<string, string> = { 'Content-Type': 'application/json' }) =>
    fetch(`${base}/publish`, { method: 'POST', headers, body }).then(async (res) => ({
      status: res.status,
      body: (await res.json()) as Record<string, unknown>,
    }));

  describe('Redis payloads that are not django_sse arrays', () => {
    const mib = 'y'.repeat(1024 * 1024);
    test.each([
      ['plain text', 'hello from a legacy publisher'],
      ['a JSON object', '{"event": "message", "data": "x"}'],
      ['broken JSON', '["message", "{\\"type\\": '],
      ['an event name with a newline', '["a\\nb", "x"]'],
      ['a 1 MiB plain-text payload', mib],
    ])('%s is delivered raw as `message`, counted, logged at debug; the stream stays open', async (_what, payload) => {
      const reader = await open('all');
      const bystander = await open('other');
      const before = (sse.hub.broker as RedisBroker).counters.badPayloads;
      const logged = debug.length;

      await redis.publish('all', payload);
      await redis.publish('all', '["message", "good after bad"]');
      await redis.publish('other', '["message", "other channel"]');

      await reader.waitForEvents(2);
      expect(reader.events).toEqual([
        { event: 'message', data: payload },
        { event: 'message', data: 'good after bad' },
      ]);
      expect(reader.ended).toBe(false);
      await bystander.waitForEvents(1);
      expect(bystander.events).toEqual([{ event: 'message', data: 'other channel' }]);
      expect((sse.hub.broker as RedisBroker).counters.badPayloads).toBe(before + 1);
      expect(debug.length).toBe(logged + 1);
      expect(debug[logged]?.[0]).toMatch(/not a django_sse array/);
    });

    test('a 1 MiB django_sse array arrives whole', async () => {
      const reader = await open('all');
      await redis.publish('all', JSON.stringify(['big', mib]));
      await reader.waitForEvents(1);
      expect(reader.events[0]).toEqual({ event: 'big', data: mib });
    });
  });

  describe('subscriptions with bad channels answer 400 JSON', () => {
    test.each([
      ['no channels parameter', ''],
      ['an empty channel list', '?channels='],
      ['only commas', '?channels=,,'],
      ['a channel of 129 characters', `?channels=${'c'.repeat(129)}`],
      ['`a b`', '?channels=a%20b'],
      ['`../x`', '?channels=../x'],
      ['one good and one bad', '?channels=all,a%20b'],
      ['65 channels', `?channels=${Array.from({ length: 65 }, (_, i) => `c${i}`).join(',')}`],
    ])('%s', async (_what, query) => {
      const { status, body, headers } = await getJson(`${base}/${query}`);
      expect(status).toBe(400);
      expect(headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(body).toEqual({ error: expect.any(String) });
    });

    test('the messages say what is wrong', async () => {
      expect((await getJson(`${base}/?channels=a%20b`)).body).toEqual({
        error: 'channel "a b" is not a valid channel name: use 1-128 characters of A-Z a-z 0-9 _ . : @ -',
      });
      expect((await getJson(`${base}/`)).body).toEqual({
        error: 'no channels given: ask for at least one, e.g. ?channels=all',
      });
      const many = Array.from({ length: 65 }, (_, i) => `c${i}`).join(',');
      expect((await getJson(`${base}/?channels=${many}`)).body).toEqual({
        error: '65 channels asked for; at most 64 are allowed per connection (maxChannels)',
      });
    });

    test('exactly 64 channels are accepted', async () => {
      const reader = await SseReader.open(
        `${base}/?channels=${Array.from({ length: 64 }, (_, i) => `c${i}`).join(',')}`,
      );
      readers.push(reader);
      expect(reader.status).toBe(200);
    });
  });

  describe('POST /publish with a bad body answers 400 JSON', () => {
    test.each([
      ['not JSON', 'channel=all&data=x', /not JSON/],
      ['broken JSON', '{"channel": "all", ', /not JSON/],
      ['a JSON array', '["message", "x"]', /must be a JSON object/],
      ['no channel', '{"event": "message", "data": "x"}', /lacks "channel"/],
      ['no data', '{"channel": "all"}', /lacks "data"/],
      ['an empty channel', '{"channel": "", "data": "x"}', /must not be empty/],
      ['channel `a b`', '{"channel": "a b", "data": "x"}', /not a valid channel name/],
      ['channel `../x`', '{"channel": "../x", "data": "x"}', /not a valid channel name/],
      ['a channel of 129 characters', JSON.stringify({ channel: 'c'.repeat(129), data: 'x' }), /129 characters/],
      ['an event name with a newline', '{"channel": "all", "event": "a\\nb", "data": "x"}', /line break/],
      ['an id with a newline', '{"channel": "all", "data": "x", "id": "1\\n2"}', /event id/],
    ])('%s', async (_what, body, message) => {
      const reader = await open('all');
      const answer = await post(body);
      expect(answer.status).toBe(400);
      expect(answer.body).toEqual({ error: expect.stringMatching(message) });
      // Nothing was published, and a good event still goes through.
      expect(await post('{"channel": "all", "event": "ok", "data": "still alive"}')).toEqual({
        status: 202,
        body: {},
      });
      await reader.waitForEvents(1);
      expect(reader.events).toEqual([{ event: 'ok', data: 'still alive' }]);
    });

    test('a good body: 202, non-string data JSON-encoded, id passed on', async () => {
      const reader = await open('all');
      expect(await post('{"channel": "all", "data": {"type": "message"}, "id": "5"}')).toEqual({
        status: 202,
        body: { id: '5' },
      });
      await reader.waitForEvents(1);
      expect(reader.events).toEqual([{ event: 'message', data: '{"type":"message"}', id: '5' }]);
    });

    test('a body over the limit is 413 JSON', async () => {
      const answer = await post(JSON.stringify({ channel: 'all', data: 'x'.repeat(3 * 1024 * 1024) }));
      expect(answer.status).toBe(413);
      expect(answer.body).toEqual({ error: expect.stringMatching(/larger than/) });
    });
  });
});
