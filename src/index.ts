// The public surface of sse-hub (docs/api.md). Named exports, grouped; no logic
// here beyond binding sseMiddleware() to the default hub, which keeps express/
// from importing default-hub.ts (and through it the brokers).
import { getDefaultHub } from './default-hub.js';
import { createSseMiddleware, type SseMiddleware } from './express/middleware.js';

// Creating and using a hub
export { createHub } from './create-hub.js';
export { configure, sendEvent, getDefaultHub } from './default-hub.js';
export { Hub, type HubStats, type SendResult, type AttachOptions } from './core/hub.js';
export type { ChannelSummary, PresenceOverview } from './core/presence.js';
export type { PresenceEventData } from './core/presence-events.js';
export type { Refusal, RefusalKind } from './core/refusals.js';
export type { HubOptions, HistoryOptions, RedisClusterOptions, RedisSentinelOptions } from './core/options.js';
export type { Connection, CloseReason } from './core/connection.js';

// Express (and plain node:http) handlers
/**
 * The SSE stream as an Express 4/5 (or node:http) handler. Streams on
 * `options.hub`, else on the process-wide hub of configure()/sendEvent().
 * Channels default to fromSession(), which needs express-session mounted first.
 */
export const sseMiddleware: SseMiddleware = createSseMiddleware(getDefaultHub);
export type { SseMiddleware, SseMiddlewareOptions, SseRequestHandler } from './express/middleware.js';
export { clientScripts, type ClientScriptsOptions, type StaticHandler } from './http/client-scripts.js';
export { sseAdmin, type SseAdminOptions, type SseAdminHandler } from './express/admin.js';
export {
  fromQuery,
  fromSession,
  defaultGetUser,
  userChannelPrefix,
  type ChannelResolver,
  type FromQueryOptions,
  type FromSessionOptions,
  type GetUser,
  type SessionData,
  type AuthorizeExtra,
  type SessionChannelOptions,
} from './http/resolvers.js';
export type { Authorize } from './http/subscribe.js';
export { fromSessionCookie, type SessionCookieOptions, type SessionCookieResolver } from './http/session-cookie.js';
export {
  fromToken,
  createTokenVerifier,
  tokenOf,
  DEFAULT_TOKEN_COOKIE,
  type TokenOptions,
  type TokenKeyOptions,
  type TokenClaims,
  type TokenVerifier,
  type TokenResolver,
  type TokenCounters,
  type ChannelGrant,
} from './http/token.js';
export { createCors, type CorsOptions } from './http/cors.js';
export { sseProbe, type ProbeOptions, type ProbeHandler } from './http/probe.js';

// Events, channels and their wire formats
export type { SseEvent } from './core/event.js';
export { toEvent } from './core/event.js';
export { isChannelName, parseChannelList } from './core/channel.js';
export { encodeFrame } from './core/frame.js';
export { encodePayload, decodePayload, type DecodedPayload } from './brokers/redis-wire.js';

// Brokers: the interface and the two built in
export type {
  Broker,
  BrokerHealth,
  BrokerHistory,
  BrokerCounters,
  BrokerCounterValues,
  BrokerSessionKeys,
  SessionKeyReader,
  BrokerListener,
  BrokerPresence,
  ChannelPresence,
  PresenceHandle,
  PresenceReading,
  PresenceSource,
  HistoryLength,
  HistoryLimits,
  HistorySnapshot,
  ChannelHistory,
} from './core/broker.js';
export { MemoryBroker } from './brokers/memory.js';
export {
  RedisBroker,
  type RedisBrokerCounters,
  type RedisBrokerOptions,
  type RedisClusterConfig,
  type RedisKeyReader,
  type RedisSentinelConfig,
} from './brokers/redis.js';

// Errors (each has a stable `code`; see docs/errors.md)
export {
  SseHubError,
  ChannelNameError,
  EventError,
  OptionError,
  BrokerUnavailableError,
  SessionStoreUnavailableError,
  HttpError,
  SseHubTypeError,
  UsageError,
  isSseHubError,
  type SseHubErrorCode,
} from './core/errors.js';

// Logging
export type { Logger } from './core/logger.js';
