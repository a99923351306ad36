// The SSE wire format (docs/protocol.md#sse-frames). A frame is built once per event
// and the same Buffer is written to every subscriber, so nothing here may
// depend on a connection. Input is trusted: it comes from toEvent() or
// decodePayload(), which reject CR/LF in names and ids.
import type { SseEvent } from './event.js';

const LINE_BREAKS = /\r\n|\r|\n/;

/** Encodes one event as the bytes of an SSE frame. */
export function encodeFrame(event: SseEvent): Buffer {
  let text = event.id === undefined ? '' : `id: ${event.id}\n`;
  text += `event: ${event.event}\n`;
  // The common case, one line of data, needs no split.
  text += LINE_BREAKS.test(event.data)
    ? `data: ${event.data.split(LINE_BREAKS).join('\ndata: ')}\n\n`
    : `data: ${event.data}\n\n`;
  return Buffer.from(text, 'utf8');
}

/**
 * Frames of events still in memory somewhere, by event. The hub encodes a
 * live event through here only when history is on: the history cache then
 * holds the same SseEvent, and every replay of it writes this frame instead
 * of encoding its own copy (thousands of resumes replay the same events).
 * Weak: a frame lives exactly as long as its event.
 */
const sharedFrames = new WeakMap<SseEvent, Buffer>();

/** encodeFrame(event), built once per event object and shared by whoever asks again. */
export function sharedFrame(event: SseEvent): Buffer {
  let frame = sharedFrames.get(event);
  if (frame === undefined) sharedFrames.set(event, (frame = encodeFrame(event)));
  return frame;
}

/** A comment frame: ignored by EventSource, but keeps proxies and timeouts from closing the stream. */
export function encodeComment(text: string): Buffer {
  return Buffer.from(`: ${text.replace(/\r\n|\r|\n/g, ' ')}\n\n`, 'utf8');
}

/** The first bytes of every stream: the reconnection delay, then a comment so the stream is seen open at once. */
export function encodePreamble(retryMs: number): Buffer {
  return Buffer.from(`retry: ${retryMs}\n: sse-hub\n\n`, 'utf8');
}

/** A frame that only sets the reconnection delay: sent just before the server ends a stream. */
export function encodeRetry(retryMs: number): Buffer {
  return Buffer.from(`retry: ${retryMs}\n\n`, 'utf8');
}

export const PING_FRAME: Buffer = encodeComment('ping');

/** Name of the heartbeat event (`heartbeatEvent: true`); pages watch it to tell a dead stream from a quiet one. */
const HEARTBEAT_EVENT = 'heartbeat';

/**
 * The heartbeat as an event a page can see (docs/protocol.md#comments-and-pings): `event: heartbeat` with
 * data `{"heartbeat":<interval ms>,"time":<epoch ms>}`. Built once per hub
 * tick and shared by every idle connection; also the first event of every
 * stream, so the browser learns the interval without configuration.
 */
export function encodeHeartbeatEvent(heartbeatMs: number, now: number): Buffer {
  return Buffer.from(`event: ${HEARTBEAT_EVENT}\ndata: {"heartbeat":${heartbeatMs},"time":${now}}\n\n`, 'utf8');
}
