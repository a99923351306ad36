// The one way an answer other than a stream leaves over HTTP: JSON, with
// `{ "error": ... }` for failures (docs/errors.md#over-http). Unexpected errors are logged in
// full and answered generically, never with internals (CWE-209).
import type { ServerResponse } from 'node:http';
import { isSseHubError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(text);
}

export function sendJsonError(
  res: ServerResponse,
  status: number,
  message: string,
  headers?: Record<string, string>,
): void {
  sendJson(res, status, { error: message }, headers);
}

/** Answers an error: its own status and message when it is ours, else a logged 500. */
export function sendError(res: ServerResponse, err: unknown, logger: Logger): void {
  if (isSseHubError(err)) {
    if (err.status >= 500) logger.warn(err.message);
    sendJsonError(res, err.status, err.message);
    return;
  }
  logger.error('unexpected error while handling an SSE request', {
    error: err instanceof Error ? (err.stack ?? err.message) : String(err),
  });
  sendJsonError(res, 500, 'internal error; see the server log');
}
