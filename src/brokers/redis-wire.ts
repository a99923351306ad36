// The django_sse wire format (docs/protocol.md#redis-payload): a Redis message is the JSON array
// ["event", "data"] or ["event", "data", "id"]. Anything else is still
// delivered — as event `message` with the raw payload as data — and flagged
// so it can be counted and logged; it never throws.
import { DEFAULT_EVENT, isEventId, isEventName, type SseEvent } from '../core/event.js';

export interface DecodedPayload {
  event: SseEvent;
  /** False when the payload was not a django_sse array and was passed on raw. */
  wellFormed: boolean;
}

export function encodePayload(event: SseEvent): string {
  return JSON.stringify(event.id === undefined ? [event.event, event.data] : [event.event, event.data, event.id]);
}

export function decodePayload(raw: string): DecodedPayload {
  const event = parseArray(raw);
  return event === undefined
    ? { event: { event: DEFAULT_EVENT, data: raw }, wellFormed: false }
    : { event, wellFormed: true };
}

function parseArray(raw: string): SseEvent | undefined {
  // Cheap pre-check: most bad payloads are plain text and need no JSON.parse.
  if (raw.charCodeAt(0) !== 0x5b /* [ */) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || value.length < 2 || value.length > 3) return undefined;
  const [name, data, id] = value as unknown[];
  if (!isEventName(name)) return undefined;
  let text: string;
  try {
    text = typeof data === 'string' ? data : (JSON.stringify(data) ?? 'null');
  } catch {
    // JSON.parse reads any depth, JSON.stringify recurses: data nested
    // ~10^4 deep or more overflows the stack (RangeError). Such a payload is
    // not one django_sse would send; it goes out raw, counted, never thrown
    // into the subscriber's message handler, where it was dropped.
    return undefined;
  }
  const event: SseEvent = { event: name, data: text };
  if (value.length === 3 && id !== null) {
    const text = typeof id === 'number' && Number.isFinite(id) ? String(id) : id;
    if (!isEventId(text)) return undefined;
    event.id = text;
  }
  return event;
}
