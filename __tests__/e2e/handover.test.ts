// docs/guarantees.md "Shutdown" + "History and resume": two
// sse-runserver processes on one Redis; the first is SIGTERMed mid-stream and
// the client resumes on the second with Last-Event-ID, missing nothing.
import http from 'node:http';
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
      // Events parsed before this line (the replay can share a TCP read with
      // the headers, and `open` resolves after it was parsed) are taken too.
      received.push(...onFirst.events);
      onFirst.on('event', (event: ParsedEvent) => received.push(event));
      await waitFor(() => received.length >= 30, { what: 'events on the first process' });

      expect(await first.stop('SIGTERM')).toBe(0);
      await onFirst.waitForEnd(); // ended cleanly: a browser reconnects after `retry`
      const lastId = received[received.length - 1]?.id as string;
      const countAtHandover = received.length;

      const onSecond = await SseReader.open(`${second.url}/?channels=feed`, { 'Last-Event-ID': lastId });
      readers.push(onSecond);
      received.push(...onSecond.events);
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

  test('with --drain-time, SIGTERM ends the streams spread over it, each cleanly with a jittered retry:, and all resume with nothing lost', async () => {
    const DRAIN = 2000;
    const args = ['--redis', redis.url, '--history', '1000', '--retry', '100'];
    const first = await startRunserver([...args, '--drain-time', String(DRAIN)]);
    const second = await startRunserver(args);
    servers.push(first, second);

    let n = 0;
    let publishing = true;
    const loop = (async () => {
      while (publishing) {
        const res = await fetch(`${second.url}/publish`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ channel: 'drain', event: 'tick', data: String(n) }),
        });
        expect(res.status).toBe(202);
        n++;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();

    const clients = Array.from({ length: 20 }, () => new RawStream());
    try {
      await Promise.all(clients.map((c) => c.open(`${first.url}/?channels=drain`)));
      await waitFor(() => clients.every((c) => c.data.length >= 5), { what: 'events on every stream' });
      const sigterm = Date.now();
      const exited = first.stop('SIGTERM');
      await waitFor(() => clients.every((c) => c.endedAt !== undefined), {
        timeout: DRAIN + 5000,
        what: 'every stream to end',
      });
      expect(await exited).toBe(0);
      const ends = clients.map((c) => (c.endedAt as number) - sigterm).sort((a, b) => a - b);
      console.info(`drain ${DRAIN} ms: streams ended ${ends[0]}–${ends[ends.length - 1]} ms after SIGTERM`);
      // Spread over the drain time, not all at once.
      expect((ends[ends.length - 1] as number) - (ends[0] as number)).toBeGreaterThan(DRAIN / 2);
      for (const client of clients) {
        expect(client.clean).toBe(true); // the final chunk, not a reset
        // The last retry: before the end is jittered within [retry, 2 × retry).
        expect(client.lastRetry).toBeGreaterThanOrEqual(100);
        expect(client.lastRetry).toBeLessThan(200);
      }
      expect(new Set(clients.map((c) => c.lastRetry)).size).toBeGreaterThan(1);

      // Each resumes on the second process from its last id.
      await Promise.all(clients.map((c) => c.open(`${second.url}/?channels=drain`, c.lastId)));
      const target = n + 20;
      await waitFor(() => clients.every((c) => Number(c.data[c.data.length - 1]) >= target), {
        timeout: 15_000,
        what: 'every resumed stream to catch up',
      });
    } finally {
      publishing = false;
      await loop;
      for (const client of clients) client.close();
    }
    for (const client of clients) {
      const data = client.data.map(Number);
      const start = data[0] as number;
      expect(data).toEqual(data.map((_, i) => start + i)); // no gap, no repeat across the hand-over
    }
  });
});

/** A minimal EventSource over node:http that tells a clean end (the final chunk) from a reset. */
class RawStream {
  data: string[] = [];
  lastId: string | undefined;
  lastRetry: number | undefined;
  endedAt: number | undefined;
  clean = false;
  private request: http.ClientRequest | undefined;

  open(url: string, lastEventId?: string): Promise<void> {
    this.endedAt = undefined;
    this.clean = false;
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { Accept: 'text/event-stream' };
      if (lastEventId !== undefined) headers['Last-Event-ID'] = lastEventId;
      this.request = http.get(url, { headers }, (res) => {
        let buffer = '';
        let id: string | undefined;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          const lines = buffer.split('\n');
          buffer = lines.pop() ?? '';
          for (const line of lines) {
            if (line.startsWith('id: ')) id = line.slice(4);
            else if (line.startsWith('retry: ')) this.lastRetry = Number(line.slice(7));
            else if (line.startsWith('data: ')) {
              this.data.push(line.slice(6));
              if (id !== undefined) this.lastId = id;
            }
          }
        });
        res.on('end', () => (this.clean = true));
        res.on('close', () => (this.endedAt ??= Date.now()));
        resolve();
      });
      this.request.on('error', (err) =>
        this.endedAt === undefined && this.data.length === 0 ? reject(err) : undefined,
      );
    });
  }

  close(): void {
    this.request?.destroy();
  }
}
