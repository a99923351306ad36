// What an event is (docs/protocol.md#events) and the one place where user input becomes one:
// toEvent() validates the type and id and JSON-encodes non-string data, so that
// encodeFrame() can trust every SseEvent it is handed.
import { EventError } from './errors.js';

export interface SseEvent {
  /** The SSE `event:` field; never contains CR or LF. Defaults to `message`. */
  event: string;
  /** The payload; split into one `data:` line per line when framed. */
  data: string;
  /** The SSE `id:` field, when the event has one; never contains CR, LF or NUL. */
  id?: string;
}

export const DEFAULT_EVENT = 'message';
const LINE_BREAK = /[\r\n]/;
const BAD_ID = /[\r\n\0]/;

export function isEventName(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && !LINE_BREAK.test(value);
}

export function isEventId(value: unknown): value is string {
  return typeof value === 'string' && !BAD_ID.test(value);
}

/**
 * Builds an SseEvent from what a caller passed to sendEvent or /publish.
 * `data` that is not a string is JSON-encoded, as django_sse does.
 * @throws EventError for a type with CR/LF, unserialisable data, or a bad id.
 */
export function toEvent(type: unknown, data: unknown, id?: unknown): SseEvent {
  const event = type === undefined || type === null ? DEFAULT_EVENT : type;
  if (typeof event !== 'string' || event.length === 0) {
    throw new EventError(`event type must be a non-empty string, got ${JSON.stringify(event)}`);
  }
  if (LINE_BREAK.test(event)) {
    throw new EventError(`event type ${JSON.stringify(event)} contains a line break; SSE event names must be one line`);
  }
  const result: SseEvent = { event, data: encodeData(data) };
  if (id !== undefined && id !== null) {
    const text = typeof id === 'number' && Number.isFinite(id) ? String(id) : id;
    if (!isEventId(text)) {
      throw new EventError('event id must be a string without CR, LF or NUL');
    }
    result.id = text;
  }
  return result;
}

function encodeData(data: unknown): string {
  if (typeof data === 'string') return data;
  if (data === undefined) {
    throw new EventError('event data is required: pass a string or a JSON-serialisable value');
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch (err) {
    throw new EventError(`event data is not JSON-serialisable: ${(err as Error).message}`);
  }
  if (json === undefined) {
    throw new EventError(`event data of type ${typeof data} is not JSON-serialisable`);
  }
  return json;
}
