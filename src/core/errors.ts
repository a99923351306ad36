// Every error sse-hub throws on purpose is an `SseHubError`: one root, a
// stable `code` (listed in docs/errors.md) and, where it can reach a client
// over HTTP, the `status` to answer with. Messages say what is wrong and how
// to fix it; they never leak internals.
//
// Bad input to the API (a channel name, an event, an option) must also stay
// `instanceof TypeError`, as the docs promise. JavaScript has one prototype
// chain, so those errors extend TypeError and carry a brand that
// `SseHubError[Symbol.hasInstance]` recognises: `instanceof SseHubError` is
// true for every sse-hub error, whichever built-in it extends.

export type SseHubErrorCode =
  | 'SSE_ERR_CHANNEL_NAME'
  | 'SSE_ERR_TOO_MANY_CHANNELS'
  | 'SSE_ERR_NO_CHANNELS'
  | 'SSE_ERR_EVENT'
  | 'SSE_ERR_OPTION'
  | 'SSE_ERR_USAGE'
  | 'SSE_ERR_BROKER_UNAVAILABLE'
  | 'SSE_ERR_SESSION_STORE_UNAVAILABLE'
  | 'SSE_ERR_HUB_CLOSED'
  | 'SSE_ERR_TOO_MANY_CONNECTIONS'
  | 'SSE_ERR_UNAUTHORIZED'
  | 'SSE_ERR_FORBIDDEN'
  | 'SSE_ERR_ANONYMOUS'
  | 'SSE_ERR_NO_SESSION'
  | 'SSE_ERR_TOKEN'
  | 'SSE_ERR_METHOD_NOT_ALLOWED'
  | 'SSE_ERR_PAYLOAD_TOO_LARGE'
  | 'SSE_ERR_UNSUPPORTED_MEDIA_TYPE'
  | 'SSE_ERR_BAD_REQUEST';

/** Marks every sse-hub error, whether it extends Error or TypeError. */
const BRAND = Symbol.for('sse-hub.error');

/** The root of every error sse-hub throws on purpose. */
export class SseHubError extends Error {
  readonly code: SseHubErrorCode;
  /** HTTP status to answer with when this error reaches a client (500 when it never should). */
  readonly status: number;

  constructor(code: SseHubErrorCode, message: string, status = 500, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    brand(this);
  }

  /** `x instanceof SseHubError` is true for every sse-hub error, TypeErrors included. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this === SseHubError) return typeof value === 'object' && value !== null && BRAND in value;
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }
}

/** Bad input to the API: an `SseHubError` that is also a `TypeError`. */
export class SseHubTypeError extends TypeError {
  readonly code: SseHubErrorCode;
  /** HTTP status when the bad input came from a request (400); none for options. */
  readonly status: number;

  constructor(code: SseHubErrorCode, message: string, status = 400) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    brand(this);
  }
}

function brand(err: Error): void {
  Object.defineProperty(err, BRAND, { value: true });
}

/**
 * A channel name outside the allowed characters or length (docs/protocol.md
 * "Channels"), or a bad channel list. Status 400 for subscriptions.
 */
export class ChannelNameError extends SseHubTypeError {
  constructor(message: string, code: SseHubErrorCode = 'SSE_ERR_CHANNEL_NAME') {
    super(code, message, 400);
  }
}

/** An event that cannot be framed: a type with CR/LF, data that is not JSON-serialisable. */
export class EventError extends SseHubTypeError {
  constructor(message: string) {
    super('SSE_ERR_EVENT', message, 400);
  }
}

/** An option with a value outside what its JSDoc allows; thrown when the factory runs. */
export class OptionError extends SseHubTypeError {
  constructor(message: string) {
    super('SSE_ERR_OPTION', message, 500);
  }
}

/** A command line the CLI cannot run: unknown flag, bad value, missing argument. Exit 2. */
export class UsageError extends SseHubTypeError {
  constructor(message: string) {
    super('SSE_ERR_USAGE', message, 500);
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

/**
 * The session store (session mode) is down or slow, so the login cannot be
 * checked. A stream answers it with 200 + `retry:` (EventSource gives up for
 * good after a non-200); anything else with 503.
 */
export class SessionStoreUnavailableError extends SseHubError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SSE_ERR_SESSION_STORE_UNAVAILABLE', message, 503, options);
  }
}

/** The code an HttpError gets from its status when none is given. */
const CODE_OF_STATUS: Readonly<Record<number, SseHubErrorCode>> = {
  401: 'SSE_ERR_UNAUTHORIZED',
  403: 'SSE_ERR_FORBIDDEN',
  405: 'SSE_ERR_METHOD_NOT_ALLOWED',
  413: 'SSE_ERR_PAYLOAD_TOO_LARGE',
  415: 'SSE_ERR_UNSUPPORTED_MEDIA_TYPE',
};

/** An error that maps to one HTTP answer (403 refused channel, 400 bad body, ...). */
export class HttpError extends SseHubError {
  constructor(
    status: number,
    message: string,
    code: SseHubErrorCode = CODE_OF_STATUS[status] ?? 'SSE_ERR_BAD_REQUEST',
  ) {
    super(code, message, status);
  }
}

/** True for every error sse-hub throws on purpose (they all carry a `SSE_ERR_*` code). */
export function isSseHubError(err: unknown): err is SseHubError {
  return err instanceof SseHubError;
}
