// Turns a GET into a subscription: connection caps → resolve channels →
// validate → authorize (a veto on every channel) → attach a Connection to the
// hub. A refusal retrying cannot cure answers JSON 400/403 here, before any
// stream byte is written. One that time cures (a cap, the session store away)
// answers 200 + `retry:` + end instead, because a non-200 makes EventSource
// give up for good (docs/protocol.md).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseChannelList } from '../core/channel.js';
import { HttpError, isSseHubError } from '../core/errors.js';
import type { Hub } from '../core/hub.js';
import { nonNegativeInteger } from '../core/options.js';
import { clientAddress, ConnectionLimiter, connectionLimiterOf } from './connection-limits.js';
import { BROADCAST_CHANNEL, fromSession, queryOf, type ChannelResolver } from './resolvers.js';
import { recordRefusal } from './refusals.js';
import { sendError, sendJsonError } from './respond.js';

/** A veto on every channel a request would listen on; false → 403. */
export type Authorize = (req: IncomingMessage, channel: string) => boolean | Promise<boolean>;

export interface SubscribeOptions {
  /** The hub to attach to, or a function returning it (the default hub, created lazily). */
  hub: Hub | (() => Hub);
  /** Which channels a request listens on. Defaults to fromSession(). */
  channels?: ChannelResolver;
  /** Called for every channel; returning false refuses the request with 403. */
  authorize?: Authorize;
  /** Let requests without a logged-in user listen on `all` only, instead of 403. Defaults to false. */
  allowAnonymous?: boolean;
  /**
   * Streams this handler serves at once, on top of the hub's own
   * `maxConnections` (both apply). 0 or absent: only the hub's cap.
   */
  maxConnections?: number;
  /**
   * Streams one client address may hold on this handler, on top of the hub's
   * `maxConnectionsPerIp` (both apply). 0 or absent: only the hub's cap.
   */
  maxConnectionsPerIp?: number;
  /**
   * Reject the returned promise with errors that are not sse-hub's own (a
   * resolver or authorize hook that throws), instead of answering them 500,
   * so that Express's error handlers get them. Defaults to false.
   */
  passUnexpected?: boolean;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export function createSubscribeHandler(options: SubscribeOptions): RequestHandler {
  const resolve = options.channels ?? fromSession();
  const { authorize, allowAnonymous = false, passUnexpected = false } = options;
  const getHub = typeof options.hub === 'function' ? options.hub : () => options.hub as Hub;
  const limiterOf = handlerLimits(options);
  let warnedNoSession = false;

  return async (req, res) => {
    const hub = getHub();
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        sendJsonError(res, 405, `use GET to open an event stream, not ${req.method}`, { Allow: 'GET, HEAD' });
        return;
      }
      // Before anything slow: the session lookup is bounded by the caps too.
      const limiter = limiterOf(hub);
      const over = limiter.admit(req, res);
      if (over !== undefined) {
        // In the refusal log the admin dashboard shows, as a cap hit.
        hub.recordRefusal('cap', `GET ${pathOf(req)} from ${clientAddress(req)}: ${over}`);
        limiter.refuse(req, res, over);
        return;
      }
      let asked: readonly string[];
      try {
        asked = await resolve(req);
      } catch (err) {
        if (isSseHubError(err) && err.code === 'SSE_ERR_SESSION_STORE_UNAVAILABLE') {
          // The login cannot be checked now; it can in a moment. Nothing is streamed.
          hub.options.logger.debug('refused a stream: the session store is unavailable', { error: err.message });
          hub.recordRefusal('session-store', `GET ${pathOf(req)} from ${clientAddress(req)}: ${err.message}`);
          limiter.refuse(req, res, 'session-store');
          return;
        }
        if (!(allowAnonymous && isSseHubError(err) && err.code === 'SSE_ERR_ANONYMOUS')) throw err;
        asked = [BROADCAST_CHANNEL];
      }
      const channels = parseChannelList(asked, hub.options.maxChannels);
      if (authorize !== undefined) {
        const verdicts = await Promise.all(channels.map((channel) => authorize(req, channel)));
        const refused = channels.filter((_, i) => verdicts[i] !== true);
        if (refused.length > 0) {
          throw new HttpError(403, `not allowed to listen on channel "${refused[0]}"`, 'SSE_ERR_FORBIDDEN');
        }
      }
      // The client may have gone while the resolver or authorize awaited.
      if (req.destroyed || res.destroyed) return;
      if (req.method === 'HEAD') {
        sendJsonError(res, 405, 'use GET to open an event stream', { Allow: 'GET, HEAD' });
        return;
      }
      const connection = hub.attach(req, res, channels, {
        lastEventId: lastEventIdOf(req),
        user: resolve.userOf?.(req),
      });
      if (connection.open) resolve.attached?.(req, connection);
    } catch (err) {
      recordRefusal(hub, req, `GET ${pathOf(req)}`, err);
      if (passUnexpected && !isSseHubError(err) && !res.headersSent) throw err;
      // A set-up mistake, the same for every request: worth one warning, not one per request.
      if (isSseHubError(err) && err.code === 'SSE_ERR_NO_SESSION') {
        if (!warnedNoSession) hub.options.logger.warn(err.message);
        warnedNoSession = true;
        sendJsonError(res, err.status, err.message);
        return;
      }
      sendError(res, err, hub.options.logger);
    }
  };
}

const pathOf = (req: IncomingMessage): string => (req.url ?? '').split('?', 1)[0] as string;

/**
 * The limiter a handler admits streams through: the hub's, or, when the
 * handler has caps of its own, a child of the hub's checked as well.
 */
function handlerLimits(options: SubscribeOptions): (hub: Hub) => ConnectionLimiter {
  const maxConnections = options.maxConnections ?? 0;
  const maxConnectionsPerIp = options.maxConnectionsPerIp ?? 0;
  nonNegativeInteger('maxConnections', maxConnections, 'connections (0: only the hub cap)');
  nonNegativeInteger('maxConnectionsPerIp', maxConnectionsPerIp, 'connections (0: only the hub cap)');
  if (maxConnections === 0 && maxConnectionsPerIp === 0) return connectionLimiterOf;
  // The hub may be created lazily (the default hub): the child follows it.
  let current: { hub: Hub; limiter: ConnectionLimiter } | undefined;
  return (hub) => {
    if (current?.hub !== hub) {
      const limits = { maxConnections, maxConnectionsPerIp, retry: hub.options.retry };
      current = { hub, limiter: new ConnectionLimiter(limits, connectionLimiterOf(hub)) };
    }
    return current.limiter;
  };
}

/** The id a reconnecting client last saw: the header, or ?lastEventId= for clients that cannot set it. */
function lastEventIdOf(req: IncomingMessage): string | undefined {
  const header = req.headers['last-event-id'];
  const value = typeof header === 'string' && header !== '' ? header : queryOf(req).get('lastEventId');
  return value === null || value === '' ? undefined : value;
}
