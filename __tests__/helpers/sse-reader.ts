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
        res.on('end', () => reader.finish());
        res.on('close', () => reader.finish());
        resolve(reader);
      });
      req.on('error', (err) => (reader.status === 0 ? reject(err) : reader.finish()));
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

  waitForEnd(timeout = 5000): Promise<void> {
    return waitFor(() => this.ended, { timeout, what: 'the stream to end' }).then(() => undefined);
  }

  close(): void {
    this.request?.destroy();
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
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
