// SPEC §7 "Shutdown" + "History and resume" (issue 5, point 3): two
// sse-runserver processes on one Redis; the first is SIGTERMed mid-stream and
// the client resumes on the second with Last-Event-ID, missing nothing.
import { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { startRunserver, type RunningServer } from '../helpers/run-cli';
import { SseReader, type ParsedEvent } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

describeWithTools(['redis-server'], 'hand-over between two sse-runserver processes', () => {
  let redis: RedisServer;
  const servers: RunningServer[] = [];
  const readers: SseReader[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => {
    for (const reader of readers) reader.close();
    for (const server of servers) await server.stop('SIGKILL');
    await redis.stop();
  });

  test('a client moved from a SIGTERMed process to another resumes with nothing lost', async () => {
    const args = ['--redis', redis.url, '--history', '1000', '--retry', '100'];
    const [first, second] = [await startRunserver(args), await startRunserver(args)];
    servers.push(first, second);

    // The publisher talks to the second process, which outlives the first.
    let n = 0;
    let publishing = true;
    const loop = (async () => {
      while (publishing) {
        const res = await fetch(`${second.url}/publish`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ channel: 'feed', event: 'tick', data: String(n) }),
        });
        expect(res.status).toBe(202);
        n++;
        await new Promise((resolve) => setTimeout(resolve, 3));
      }
    })();

    const received: ParsedEvent[] = [];
    try {
      const onFirst = await SseReader.open(`${first.url}/?channels=feed`);
      readers.push(onFirst);
      onFirst.on('event', (event: ParsedEvent) => received.push(event));
      await waitFor(() => received.length >= 30, { what: 'events on the first process' });

      expect(await first.stop('SIGTERM')).toBe(0);
      await onFirst.waitForEnd(); // ended cleanly: a browser reconnects after `retry`
      const lastId = received[received.length - 1]?.id as string;
      const countAtHandover = received.length;

      const onSecond = await SseReader.open(`${second.url}/?channels=feed`, { 'Last-Event-ID': lastId });
      readers.push(onSecond);
      onSecond.on('event', (event: ParsedEvent) => received.push(event));
      await waitFor(() => received.length >= countAtHandover + 30, { what: 'events on the second process' });
    } finally {
      publishing = false;
      await loop;
    }
    await waitFor(() => Number(received[received.length - 1]?.data) === n - 1, {
      what: `the last of ${n} events`,
    });
    const data = received.map((e) => Number(e.data));
    const start = data[0] as number;
    expect(data).toEqual(data.map((_, i) => start + i)); // no gap, no repeat
    expect(received.every((e) => e.event === 'tick')).toBe(true);
  });
});
