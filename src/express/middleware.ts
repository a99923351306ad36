// sseMiddleware(): the subscribe handler as an Express 4/5 handler. It also
// works as a plain node:http (req, res) handler. Refusals are answered here
// (400/403 JSON); only unexpected errors go to Express's next(err).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Hub } from '../core/hub.js';
import { getDefaultHub } from '../default-hub.js';
import type { ChannelResolver } from '../http/resolvers.js';
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

export function sseMiddleware(options: SseMiddlewareOptions = {}): SseRequestHandler {
  const { hub } = options;
  const handle = createSubscribeHandler({
    hub: hub ?? getDefaultHub,
    channels: options.channels,
    authorize: options.authorize,
    allowAnonymous: options.allowAnonymous,
    maxConnections: options.maxConnections,
    maxConnectionsPerIp: options.maxConnectionsPerIp,
  });
  return (req, res, next) => {
    handle(req, res).catch((err: unknown) => {
      if (next) next(err);
      else if (!res.headersSent) res.writeHead(500).end();
    });
  };
}
