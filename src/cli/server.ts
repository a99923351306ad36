// createServer(): the standalone SSE server behind sse-runserver — a plain
// node:http server routing to the http/ handlers. Tests and the bin both use
// it, so what the tests see is what users run.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import serveStatic from 'serve-static';
import type { Registry } from 'prom-client';
import type { Hub } from '../core/hub.js';
import type { HubOptions } from '../core/options.js';
import type { Logger } from '../core/logger.js';
import { positiveInteger } from '../core/options.js';
import { createHub } from '../create-hub.js';
import { clientScripts } from '../http/client-scripts.js';
import { createAdminHandler, type AdminHandler } from '../http/admin.js';
import { createChannelsHandler } from '../http/channels.js';
import { createCors } from '../http/cors.js';
import { createHealthHandler, hubHealth, type HealthReport, type HealthSource } from '../http/health.js';
import { PROBE_SEGMENT, sseProbe } from '../http/probe.js';
import {
  createMetricsHandler,
  createMetricsRegistry,
  type MetricsExtras,
  type MetricsSource,
} from '../http/metrics.js';
import { checkAccess, createPublishHandler } from '../http/publish.js';
import { fromQuery, type ChannelResolver } from '../http/resolvers.js';
import { sendError, sendJsonError } from '../http/respond.js';
import { createSubscribeHandler } from '../http/subscribe.js';
import { isTokenResolver } from '../http/token.js';
import { trustProxy, type ClientAddressOf } from '../http/trust-proxy.js';

export const STATIC_PREFIX = '/static/sse-hub/';
/** Where `--admin` serves the dashboard. */
export const ADMIN_PREFIX = '/_admin';

export interface ServerOptions {
  /** Options of the hub the server creates (ignored when `hub` is given). */
  hubOptions?: HubOptions;
  /** A ready hub to serve instead of creating one; the server then does not close it. */
  hub?: Hub;
  /** Path of the SSE endpoint. Defaults to `/`. */
  path?: string;
  /**
   * Where channels come from. Defaults to fromQuery(). With fromToken(),
   * POST /publish also takes bearer tokens with a `publish` claim.
   */
  channels?: ChannelResolver;
  /** Origins whose pages may open the stream (and POST /publish) with credentials. Defaults to none. */
  corsOrigins?: readonly string[];
  /** Bearer token for POST /publish; without it, loopback only. */
  publishToken?: string;
  /**
   * Bearer token for GET /channels and the admin dashboard. Defaults to
   * publishToken; with neither, they answer loopback only.
   */
  adminToken?: string;
  /**
   * The reverse proxies whose X-Forwarded-For names the client (IP
   * addresses, CIDR ranges, `loopback`, `linklocal`, `uniquelocal`), as
   * Express's `trust proxy`: the per-address stream cap then counts the
   * client, the rightmost address no trusted proxy wrote. Defaults to none:
   * the socket's address, whatever the headers say.
   */
  trustProxy?: readonly string[];
  /** Largest POST /publish body (and the dashboard's), in bytes; a larger one gets 413. Defaults to 2 MiB. */
  maxPublishBytes?: number;
  /** Serve the admin dashboard at /_admin/. Defaults to false. */
  admin?: boolean;
  /** A folder of pages to serve on paths no other route takes (index.html at /). Defaults to none. */
  staticDir?: string;
  /**
   * Serve Prometheus metrics at GET /metrics: `true` for this process's
   * figures, or a function turning this process's registry into the source
   * to serve (sse-runserver's workers serve the cluster's sum). Defaults to off.
   */
  metrics?: boolean | ((registry: Registry) => MetricsSource);
  /**
   * Longest time a client may take to send a request's headers, in ms; past
   * it the socket gets 408 and is closed. Node's default (60 s) lets a
   * trickled header hold a socket for a minute. Defaults to 10000.
   */
  headersTimeout?: number;
  /**
   * Longest time a client may take to send a whole request (headers and
   * body), in ms. Only the request: a stream, whose request is complete at
   * once, is never cut by it. At least headersTimeout. Defaults to 30000.
   */
  requestTimeout?: number;
  /**
   * Connections the kernel queues for this server while it is too busy to
   * accept them (a reconnect storm after a deploy); Linux caps it at
   * net.core.somaxconn. Past it new connections are dropped and their
   * clients back off for seconds (SYN retries at 1, 3, 7, 15 s). Node's
   * default is 511. Defaults to 4096.
   */
  backlog?: number;
  /**
   * Where /healthz gets its answer, given this process's own health: the
   * default serves this process's; sse-runserver's workers serve the whole
   * server's (cli/cluster.ts).
   */
  health?: (local: () => HealthReport) => HealthSource;
  logger?: Logger;
}

export const DEFAULT_HEADERS_TIMEOUT = 10_000;
export const DEFAULT_REQUEST_TIMEOUT = 30_000;
export const DEFAULT_BACKLOG = 4096;

export interface SseServer {
  readonly server: http.Server;
  readonly hub: Hub;
  listen(port: number, host?: string): Promise<AddressInfo>;
  /** Stops accepting, ends every stream cleanly, closes the hub (when it owns it). */
  close(): Promise<void>;
}

export function createServer(options: ServerOptions = {}): SseServer {
  // Checked before the hub exists, so a bad value leaves no broker connection behind.
  const headersTimeout = options.headersTimeout ?? DEFAULT_HEADERS_TIMEOUT;
  positiveInteger('headersTimeout', headersTimeout, 'ms');
  positiveInteger('requestTimeout', options.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT, 'ms');
  if (options.maxPublishBytes !== undefined) positiveInteger('maxPublishBytes', options.maxPublishBytes, 'bytes');
  const clientOf: ClientAddressOf | undefined =
    options.trustProxy === undefined ? undefined : trustProxy(options.trustProxy);
  // Node requires requestTimeout >= headersTimeout.
  const requestTimeout = Math.max(options.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT, headersTimeout);
  const backlog = options.backlog ?? DEFAULT_BACKLOG;
  positiveInteger('backlog', backlog, 'connections');
  const ownsHub = options.hub === undefined;
  const hub = options.hub ?? createHub({ logger: options.logger, ...options.hubOptions });
  const logger = options.logger ?? hub.options.logger;
  const ssePath = normalizePath(options.path ?? '/');
  const subscribe = createSubscribeHandler({ hub, channels: options.channels ?? fromQuery() });
  const tokens = isTokenResolver(options.channels) ? options.channels : undefined;
  const maxBodyBytes = options.maxPublishBytes;
  const publish = createPublishHandler({ hub, token: options.publishToken, tokens: tokens?.verifier, maxBodyBytes });
  const cors = createCors({ origins: options.corsOrigins ?? [] });
  const health = createHealthHandler(options.health ? options.health(() => hubHealth(hub)) : hub);
  const adminToken = options.adminToken ?? options.publishToken;
  const adminAccess = (req: http.IncomingMessage): void =>
    checkAccess(req, adminToken, { action: 'the admin API', flag: '--admin-token' });
  const channels = createChannelsHandler({ hub, access: adminAccess });
  const admin: AdminHandler | undefined = options.admin
    ? createAdminHandler({ hub, access: adminAccess, maxPublishBytes: maxBodyBytes })
    : undefined;
  // The probe of `--doctor` sits next to the stream: `/sse/` → `/sse/_probe`.
  const probePath = `${ssePath}${PROBE_SEGMENT}`;
  const probe = sseProbe();
  const scripts = clientScripts();
  const pages = options.staticDir === undefined ? undefined : serveStatic(options.staticDir, { index: ['index.html'] });
  const counters = { requestTimeouts: 0 };
  const metrics = options.metrics
    ? metricsHandler(hub, options.metrics, {
        tokens: tokens?.counters,
        requestTimeouts: () => counters.requestTimeouts,
      })
    : undefined;

  // connectionsCheckingInterval: how often Node looks for requests past their
  // timeouts (30 s by default, which would let a trickled header live 40 s).
  const checkEvery = Math.max(100, Math.min(1000, Math.floor(headersTimeout / 4)));
  const server = http.createServer(
    { headersTimeout, requestTimeout, connectionsCheckingInterval: checkEvery },
    (req, res) => {
      const pathname = (req.url ?? '/').split('?', 1)[0] as string;
      const route = (): void | Promise<void> => {
        if (pathname === ssePath || (ssePath !== '/' && pathname === ssePath.slice(0, -1))) {
          // The connection caps read `req.ip` as they do under Express (connection-limits.ts).
          if (clientOf !== undefined) (req as http.IncomingMessage & { ip?: string }).ip = clientOf(req);
          return cors(req, res) ? undefined : subscribe(req, res);
        }
        if (pathname === '/healthz') return health(req, res);
        if (pathname === probePath) return probe(req, res);
        if (pathname === '/publish') return cors(req, res) ? undefined : publish(req, res);
        if (pathname === '/channels') return channels(req, res);
        if (pathname.startsWith('/channels/')) return channels(req, res, pathname.slice('/channels/'.length));
        if (admin !== undefined && pathname === ADMIN_PREFIX) {
          res.writeHead(308, { Location: `${ADMIN_PREFIX}/` }).end();
          return;
        }
        if (admin !== undefined && pathname.startsWith(`${ADMIN_PREFIX}/`)) {
          return admin(req, res, pathname.slice(ADMIN_PREFIX.length));
        }
        if (pathname === '/metrics' && metrics !== undefined) return metrics(req, res);
        if (pathname.startsWith(STATIC_PREFIX) && (req.method === 'GET' || req.method === 'HEAD')) {
          req.url = (req.url ?? '').slice(STATIC_PREFIX.length - 1);
          return scripts(req, res, () => sendJsonError(res, 404, `no such file: ${pathname}`));
        }
        const notFound = (): void =>
          sendJsonError(res, 404, `nothing at ${pathname}: the event stream is at ${ssePath}`);
        if (pages !== undefined && (req.method === 'GET' || req.method === 'HEAD')) return pages(req, res, notFound);
        notFound();
      };
      Promise.resolve()
        .then(route)
        .catch((err: unknown) => sendError(res, err, logger));
    },
  );

  // Node answers a client error itself only without a listener; this one
  // counts the timeouts (for /metrics) and answers as Node would.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') counters.requestTimeouts++;
    // Node's own handler answers only while no response is under way on the
    // socket (its `_httpMessage`); a raw answer would corrupt one.
    if (socket.writable && !(socket as { _httpMessage?: unknown })._httpMessage) {
      const status =
        err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? '408 Request Timeout'
          : err.code === 'HPE_HEADER_OVERFLOW'
            ? '431 Request Header Fields Too Large'
            : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    }
    socket.destroy();
  });

  let closing: Promise<void> | undefined;
  return {
    server,
    hub,
    listen(port, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port, host, backlog }, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    close() {
      closing ??= (async () => {
        admin?.close();
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        // A shared hub outlives this server: its streams here are cut below.
        if (ownsHub) await hub.close();
        server.closeIdleConnections();
        // Streams were ended cleanly above; anything still open is cut.
        const force = setTimeout(() => server.closeAllConnections(), 2000);
        await stopped;
        clearTimeout(force);
      })();
      return closing;
    },
  };
}

function metricsHandler(hub: Hub, option: true | ((registry: Registry) => MetricsSource), extras: MetricsExtras) {
  const registry = createMetricsRegistry(hub, extras);
  return createMetricsHandler(option === true ? registry : option(registry));
}

function normalizePath(path: string): string {
  const withSlash = path.startsWith('/') ? path : `/${path}`;
  return withSlash.endsWith('/') ? withSlash : `${withSlash}/`;
}
