// A raw SSE client for byte-level checks: keeps every byte received and
// parses frames the way the HTML standard's EventSource does.
import http from 'node:http';
import { EventEmitter } from 'node:events';
import { waitFor } from './wait-for';

export interface ParsedEvent {
  event: string;
  data: string;
  id?: string;
}

export class SseReader extends EventEmitter {
  status = 0;
  headers: http.IncomingHttpHeaders = {};
  raw = '';
  events: ParsedEvent[] = [];
  comments: string[] = [];
  retry: number | undefined;
  ended = false;
  /**
   * How the stream ended: `clean` when the whole response arrived (the final
   * `0\r\n\r\n` chunk, or a FIN where the response had no chunking), `reset`
   * when the connection broke off (RST, or a close in the middle of the body).
   */
  endedBy: 'clean' | 'reset' | undefined;
  body = '';
  private request: http.ClientRequest | undefined;
  private buffer = '';
  private pending: { event?: string; data: string[]; id?: string } = { data: [] };

  /** Opens `url` and resolves once the response headers arrived. */
  static open(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
    const reader = new SseReader();
    return new Promise((resolve, reject) => {
      const req = http.get(url, { headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
        reader.status = res.statusCode ?? 0;
        reader.headers = res.headers;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => reader.feed(chunk));
        // `complete` is Node's own verdict: true only once the body ended as framed.
        res.on('end', () => reader.finish(res.complete ? 'clean' : 'reset'));
        res.on('close', () => reader.finish(res.complete ? 'clean' : 'reset'));
        resolve(reader);
      });
      req.on('error', (err) => (reader.status === 0 ? reject(err) : reader.finish('reset')));
      reader.request = req;
    });
  }

  /** Waits until at least `count` events arrived; returns them all. */
  async waitForEvents(count: number, timeout = 5000): Promise<ParsedEvent[]> {
    await waitFor(() => this.events.length >= count, {
      timeout,
      what: `${count} SSE events (have ${this.events.length})`,
    });
    return this.events;
  }

  /** Waits for the server to end the stream cleanly; a reset connection rejects. */
  async waitForEnd(timeout = 5000): Promise<void> {
    await this.waitForClose(timeout);
    if (this.endedBy !== 'clean') {
      throw new Error(`the stream was reset, not ended cleanly (no final chunk); received:\n${this.raw}`);
    }
  }

  /** Waits for the stream to stop, cleanly or by a reset (see endedBy). */
  async waitForClose(timeout = 5000): Promise<void> {
    await waitFor(() => this.ended, { timeout, what: 'the stream to end' });
  }

  close(): void {
    this.request?.destroy();
  }

  private finish(how: 'clean' | 'reset'): void {
    if (this.ended) return;
    this.ended = true;
    this.endedBy = how;
    this.emit('end');
  }

  private feed(chunk: string): void {
    this.raw += chunk;
    if (this.status !== 200) {
      this.body += chunk;
      return;
    }
    this.buffer += chunk;
    const lines = this.buffer.split(/\r\n|\r|\n/);
    this.buffer = lines.pop() ?? '';
    for (const line of lines) this.line(line);
  }

  private line(line: string): void {
    if (line === '') {
      if (this.pending.data.length > 0) {
        const event: ParsedEvent = { event: this.pending.event ?? 'message', data: this.pending.data.join('\n') };
        if (this.pending.id !== undefined) event.id = this.pending.id;
        this.events.push(event);
        this.emit('event', event);
      }
      this.pending = { data: [] };
      return;
    }
    if (line.startsWith(':')) {
      this.comments.push(line.slice(1).trim());
      this.emit('comment', line);
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.pending.event = value;
    else if (field === 'data') this.pending.data.push(value);
    else if (field === 'id') this.pending.id = value;
    else if (field === 'retry') this.retry = Number(value);
  }
}

/** GETs a URL and returns status, headers and parsed JSON body (for 4xx answers). */
export async function getJson(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text, the test asserts on it
  }
  return { status: res.status, body, headers: res.headers };
}
