// Cross-origin streams (docs/tokens.md#cross-origin-streams-cors): a page on one origin opens
// `new EventSource(url, { withCredentials: true })` on another. Invariant: only
// the configured origins ever get CORS headers — credentials (the token cookie)
// are never shared with an origin nobody listed, and `*` is refused.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { OptionError } from '../core/errors.js';
import { sendJsonError } from './respond.js';

export interface CorsOptions {
  /** Origins allowed to read the stream with credentials, e.g. `https://app.example.com`. */
  origins: readonly string[];
  /** How long a browser may cache a preflight answer, in seconds. Defaults to 600. */
  maxAge?: number;
}

/**
 * Returns a function to call first for every request of a CORS-enabled route:
 * it adds the CORS headers for an allowed Origin and answers a preflight
 * (returning true: the request is done); a disallowed preflight gets 403.
 */
export function createCors(options: CorsOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const origins = new Set(options.origins.map(normalizeOrigin));
  const maxAge = options.maxAge ?? 600;
  if (!Number.isSafeInteger(maxAge) || maxAge < 0) {
    throw new OptionError(`maxAge must be a whole number of seconds >= 0, got ${String(maxAge)}`);
  }
  return (req, res) => {
    if (origins.size === 0) return false;
    // The answer depends on Origin: caches must not hand one origin's headers to another.
    res.setHeader('Vary', 'Origin');
    const origin = req.headers.origin;
    const allowed = origin !== undefined && origins.has(origin);
    const preflight = req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
    if (allowed) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
    }
    if (!preflight) return false;
    if (!allowed) {
      sendJsonError(res, 403, `origin ${origin ?? '(none)'} is not allowed: add it with --cors-origin`);
      return true;
    }
    res.writeHead(204, {
      'Access-Control-Allow-Methods': 'GET, POST',
      // Last-Event-ID: a reconnecting EventSource; the rest: fetch-based clients and POST /publish.
      'Access-Control-Allow-Headers': 'Authorization, Content-Type, Last-Event-ID, Cache-Control',
      'Access-Control-Max-Age': String(maxAge),
      'Content-Length': '0',
    });
    res.end();
    return true;
  };
}

/** `https://Example.com:443/` → `https://example.com`; throws OptionError for anything that is not an origin. */
export function normalizeOrigin(value: string): string {
  if (value === '*') {
    throw new OptionError(
      'the CORS origin "*" is refused: streams carry credentials (the token cookie), so name each origin',
    );
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new OptionError(`"${value}" is not an origin such as https://app.example.com`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin === 'null') {
    throw new OptionError(`"${value}" is not an http(s) origin such as https://app.example.com`);
  }
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '') {
    throw new OptionError(`"${value}" is not an origin: drop the path, e.g. ${url.origin}`);
  }
  return url.origin;
}
