// Every error sse-hub throws on purpose carries a stable `code` (listed in the
// README) and, where it can reach a client over HTTP, the `status` to answer
// with. Messages say what is wrong and how to fix it; they never leak internals.

export type SseHubErrorCode =
  | 'SSE_ERR_CHANNEL_NAME'
  | 'SSE_ERR_TOO_MANY_CHANNELS'
  | 'SSE_ERR_NO_CHANNELS'
  | 'SSE_ERR_EVENT'
  | 'SSE_ERR_OPTION'
  | 'SSE_ERR_BROKER_UNAVAILABLE'
  | 'SSE_ERR_HUB_CLOSED'
  | 'SSE_ERR_FORBIDDEN'
  | 'SSE_ERR_ANONYMOUS'
  | 'SSE_ERR_BAD_REQUEST';

/** Base class of the operational errors that are not input TypeErrors. */
export class SseHubError extends Error {
  readonly code: SseHubErrorCode;
  /** HTTP status to answer with when this error reaches a client. */
  readonly status: number;

  constructor(code: SseHubErrorCode, message: string, status = 500, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
  }
}

/**
 * A channel name outside SPEC §1 (1–128 chars of `A-Z a-z 0-9 _ . : @ -`), or a
 * bad channel list. It is a TypeError, as SPEC §1 asks for publishing, and
 * carries status 400 for subscriptions.
 */
export class ChannelNameError extends TypeError {
  readonly code: SseHubErrorCode;
  readonly status = 400;

  constructor(message: string, code: SseHubErrorCode = 'SSE_ERR_CHANNEL_NAME') {
    super(message);
    this.name = 'ChannelNameError';
    this.code = code;
  }
}

/** An event that cannot be framed: a type with CR/LF, data that is not JSON-serialisable. */
export class EventError extends TypeError {
  readonly code = 'SSE_ERR_EVENT' as const;
  readonly status = 400;

  constructor(message: string) {
    super(message);
    this.name = 'EventError';
  }
}

/** An option with a value outside what its JSDoc allows; thrown when the factory runs. */
export class OptionError extends TypeError {
  readonly code = 'SSE_ERR_OPTION' as const;

  constructor(message: string) {
    super(message);
    this.name = 'OptionError';
  }
}

/** The broker did not accept an event in time, or is disconnected. Answered as 503. */
export class BrokerUnavailableError extends SseHubError {
  readonly broker: string;

  constructor(broker: string, message: string, options?: { cause?: unknown }) {
    super('SSE_ERR_BROKER_UNAVAILABLE', message, 503, options);
    this.broker = broker;
  }
}

/** An error that maps to one HTTP answer (403 refused channel, 400 bad body, ...). */
export class HttpError extends SseHubError {
  constructor(status: number, message: string, code: SseHubErrorCode = 'SSE_ERR_BAD_REQUEST') {
    super(code, message, status);
  }
}

export type AnySseHubError = SseHubError | ChannelNameError | EventError | OptionError;

/** True for every error sse-hub throws on purpose (they all carry a `SSE_ERR_*` code). */
export function isSseHubError(err: unknown): err is AnySseHubError {
  return (
    err instanceof SseHubError ||
    err instanceof ChannelNameError ||
    err instanceof EventError ||
    err instanceof OptionError
  );
}
