// sseMiddleware(): the subscribe handler as an Express 4/5 handler. It also
// works as a plain node:http (req, res) handler. Refusals are answered here
// (400/403 JSON); only unexpected errors go to Express's next(err). Once a
// stream has started, nothing Express kept for routing the request is held.
// Invariant: this folder never reaches a broker. The process-wide default hub
// (which may be a Redis one) is handed in by index.ts as a function, and only
// called on the first request without a `hub` option.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Hub } from '../core/hub.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { ChannelResolver } from '../http/resolvers.js';
import { sendError } from '../http/respond.js';
import { createSubscribeHandler, type Authorize } from '../http/subscribe.js';

export interface SseMiddlewareOptions {
  /** The hub to attach streams to. Defaults to the process-wide hub of configure(). */
  hub?: Hub;
  /** Which channels a request listens on. Defaults to fromSession(): `[username, 'all']`. */
  channels?: ChannelResolver;
  /** A veto on every channel, in any mode: return false to answer 403. */
  authorize?: Authorize;
  /** Let anonymous sessions listen on `all` instead of answering 403. Defaults to false. */
  allowAnonymous?: boolean;
  /**
   * Streams this middleware serves at once, on top of the hub's
   * `maxConnections` (both apply); past it a stream gets 200 + `retry:` and
   * ends. Defaults to none (only the hub's cap).
   */
  maxConnections?: number;
  /**
   * Streams one client address (`req.ip`, which honours `trust proxy`) may
   * hold on this middleware, on top of the hub's `maxConnectionsPerIp`.
   * Defaults to none (only the hub's cap).
   */
  maxConnectionsPerIp?: number;
}

export type SseRequestHandler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void;

/** sseMiddleware(options): streams on `options.hub`, or on the hub `defaultHub()` returns. */
export type SseMiddleware = (options?: SseMiddlewareOptions) => SseRequestHandler;

/** Binds sseMiddleware() to the hub used when no `hub` option is given (index.ts: the default hub). */
export function createSseMiddleware(defaultHub: () => Hub): SseMiddleware {
  return (options = {}) => {
    const getHub = (): Hub => options.hub ?? defaultHub();
    const handle = createSubscribeHandler({
      hub: getHub,
      channels: options.channels,
      authorize: options.authorize,
      allowAnonymous: options.allowAnonymous,
      maxConnections: options.maxConnections,
      maxConnectionsPerIp: options.maxConnectionsPerIp,
      passUnexpected: true,
    });
    return (req, res, next) => {
      handle(req, res).then(
        () => {
          if (res.headersSent && !res.writableEnded) releaseRouting(req as RoutedRequest);
        },
        (err: unknown) => {
          if (next) next(err);
          else sendError(res, err, loggerOf(getHub));
        },
      );
    };
  };
}

/** The hub's logger; silent when the default hub itself could not be created (that error is the one answered). */
function loggerOf(getHub: () => Hub): Logger {
  try {
    return getHub().options.logger;
  } catch {
    return silentLogger;
  }
}

/** What Express 4/5 (router, parseurl) leave on a request to route it further. */
interface RoutedRequest extends IncomingMessage {
  next?: unknown;
  _parsedUrl?: unknown;
  _parsedOriginalUrl?: unknown;
}

/**
 * Once the stream has started, the request is never routed again: the head is
 * sent, so no later handler or error handler can answer it. What Express keeps
 * only for routing would otherwise live as long as the stream (hours): the
 * router's `next` closure, which holds the router's state, its restore closure
 * and finalhandler's `done`, and parseurl's cached URL objects — about 1 KiB
 * per idle stream (bench/RESULTS.md). They are set to undefined rather than
 * deleted, since delete would turn req into a slow dictionary object.
 * req.session, res.locals, req.params and req.query stay as they are.
 */
function releaseRouting(req: RoutedRequest): void {
  if (req.next !== undefined) req.next = undefined;
  if (req._parsedUrl !== undefined) req._parsedUrl = undefined;
  if (req._parsedOriginalUrl !== undefined) req._parsedOriginalUrl = undefined;
}
