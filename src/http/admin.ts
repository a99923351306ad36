// The admin dashboard (docs/operations.md "Admin dashboard"): one page of our
// own files (public/admin/, no build, no CDN) and the small JSON API it polls.
// Invariants: the page itself holds no data — everything comes from api/*,
// each call behind `access` — so without the token a visitor sees only the
// login prompt; and the tail is a real hub connection, so what it shows is
// exactly what subscribers get.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { assertChannelName } from '../core/channel.js';
import { HttpError } from '../core/errors.js';
import type { Hub } from '../core/hub.js';
import type { ChannelSummary } from '../core/presence.js';
import type { Refusal } from '../core/refusals.js';
import { createChannelsHandler, type AccessCheck } from './channels.js';
import { createPublishHandler } from './publish.js';
import { publicDir } from './public-dir.js';
import { queryOf } from './resolvers.js';
import { recordRefusal } from './refusals.js';
import { sendError, sendJson, sendJsonError } from './respond.js';

/** Ms between samples of the chart. */
export const SAMPLE_EVERY = 2000;
/** Samples kept: ten minutes. */
export const SAMPLES_KEPT = 300;
/** Channels listed on the dashboard, busiest first. */
const TOP_CHANNELS = 20;

export interface AdminOptions {
  hub: Hub;
  /** Lets a request to api/* through or throws HttpError 401/403. */
  access: AccessCheck;
  /** Largest body of api/publish, in bytes. Defaults to /publish's (2 MiB). */
  maxPublishBytes?: number;
}

/** One point of the chart: [epoch ms, connections in this process, events/s received]. */
export type Sample = [time: number, connections: number, eventsPerSecond: number];

/** The body of api/stats. */
export interface AdminStats {
  time: number;
  broker: { name: string; healthy: boolean };
  /** This process: uptime in s, and its hub's counters. */
  process: { uptime: number; connections: number; channels: number; slowClientsClosed: number };
  /** Live processes whose presence was summed; null when presence could not be read. */
  processes: number | null;
  /** Why presence could not be read across processes (the channels are then this process's only). */
  presenceError?: string;
  series: Sample[];
  channels: {
    channel: string;
    connections: number;
    users: number;
    /** Events/s received here over the last sample; null when this process does not listen on it. */
    eventsPerSecond: number | null;
    /** Events kept for replay; null when history is off or unreadable. */
    history: number | null;
  }[];
  refusals: Refusal[];
  refusalTotals: Record<string, number>;
}

/** Handles a request under the dashboard's mount; `path` is the part after it, starting with `/`. */
export interface AdminHandler {
  (req: IncomingMessage, res: ServerResponse, path: string): Promise<void>;
  /** Stops the sampler. */
  close(): void;
}

const ASSETS: Record<string, [file: string, type: string]> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/index.html': ['index.html', 'text/html; charset=utf-8'],
  '/admin.js': ['admin.js', 'text/javascript; charset=utf-8'],
  '/admin.css': ['admin.css', 'text/css; charset=utf-8'],
};

// Only our own files, nothing inline, and no framing (clickjacking the publish form).
const PAGE_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cache-Control': 'no-store',
};

export function createAdminHandler(options: AdminOptions): AdminHandler {
  const { hub, access } = options;
  const dir = join(publicDir(), 'admin');
  const assets = new Map(
    Object.entries(ASSETS).map(([path, [file, type]]) => [path, { body: readFileSync(join(dir, file)), type }]),
  );
  const channels = createChannelsHandler({ hub, access });
  const publish = createPublishHandler({
    hub,
    maxBodyBytes: options.maxPublishBytes,
    access: async (req) => {
      // A cross-site form cannot send JSON without a CORS preflight, which nothing here answers.
      if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) {
        throw new HttpError(415, 'send the event as Content-Type: application/json');
      }
      await access(req);
    },
  });
  const sampler = new Sampler(hub);

  const handler = (async (req, res, path) => {
    try {
      const asset = assets.get(path);
      if (asset !== undefined) {
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          sendJsonError(res, 405, `use GET, not ${req.method}`, { Allow: 'GET, HEAD' });
          return;
        }
        res.writeHead(200, { ...PAGE_HEADERS, 'Content-Type': asset.type, 'Content-Length': asset.body.length });
        res.end(req.method === 'HEAD' ? undefined : asset.body);
        return;
      }
      if (path === '/api/stats') {
        if (req.method !== 'GET') {
          sendJsonError(res, 405, `use GET, not ${req.method}`, { Allow: 'GET' });
          return;
        }
        await access(req);
        sendJson(res, 200, await stats(hub, sampler));
        return;
      }
      if (path === '/api/channels') return await channels(req, res);
      if (path.startsWith('/api/channels/')) return await channels(req, res, path.slice('/api/channels/'.length));
      if (path === '/api/publish') return await publish(req, res);
      if (path === '/api/tail') {
        if (req.method !== 'GET') {
          sendJsonError(res, 405, `use GET, not ${req.method}`, { Allow: 'GET' });
          return;
        }
        await access(req);
        const channel = assertChannelName(queryOf(req).get('channel') ?? '', 'channel');
        // A real stream of the hub; an observer, so the dashboard never counts itself.
        hub.attach(req, res, [channel], { observer: true });
        return;
      }
      sendJsonError(res, 404, `nothing at ${path} in the admin dashboard`);
    } catch (err) {
      recordRefusal(hub, req, `admin ${path}`, err);
      sendError(res, err, hub.options.logger);
    }
  }) as AdminHandler;
  handler.close = () => sampler.close();
  return handler;
}

async function stats(hub: Hub, sampler: Sampler): Promise<AdminStats> {
  const hubStats = hub.stats();
  let processes: number | null = null;
  let presenceError: string | undefined;
  let listed: ChannelSummary[];
  try {
    const overview = await hub.presenceOverview();
    processes = overview.processes;
    listed = overview.channels;
  } catch (err) {
    // Broker down: still show what this process knows — that is when the page matters most.
    presenceError = (err as Error).message;
    listed = await hub.presenceOverview({ localOnly: true }).then((o) => o.channels);
  }
  const top = listed.slice(0, TOP_CHANNELS);
  const history = await hub.historyLengths(top.map((c) => c.channel)).catch(() => undefined);
  const rates = sampler.channelRates;
  return {
    time: Date.now(),
    broker: { name: hub.broker.name, healthy: hub.isHealthy() },
    process: {
      uptime: Math.round(process.uptime()),
      connections: hubStats.connections,
      channels: hubStats.channels,
      slowClientsClosed: hubStats.slowClientsClosed,
    },
    processes,
    ...(presenceError === undefined ? {} : { presenceError }),
    series: sampler.series(),
    channels: top.map((c, i) => ({
      channel: c.channel,
      connections: c.connections,
      users: c.users.length,
      eventsPerSecond: rates.get(c.channel) ?? (hub.channelEventCounts().has(c.channel) ? 0 : null),
      history: history?.[i] ?? null,
    })),
    refusals: hub.refusals.recent(),
    refusalTotals: hub.refusals.totals(),
  };
}

/**
 * Samples the hub every SAMPLE_EVERY ms into a fixed ring (ten minutes), so
 * the chart shows the last minutes as soon as the page opens. Reads only
 * counters the hub keeps anyway: nothing per event.
 */
class Sampler {
  channelRates = new Map<string, number>();
  private readonly hub: Hub;
  private readonly ring: Sample[] = [];
  private readonly timer: NodeJS.Timeout;
  private last: { time: number; events: number; channels: Map<string, number> };

  constructor(hub: Hub) {
    this.hub = hub;
    this.last = { time: Date.now(), events: hub.stats().eventsReceived, channels: new Map(hub.channelEventCounts()) };
    this.timer = setInterval(() => this.sample(), SAMPLE_EVERY);
    this.timer.unref();
    this.ring.push([this.last.time, hub.stats().connections, 0]);
  }

  sample(now = Date.now()): void {
    const { connections, eventsReceived } = this.hub.stats();
    const seconds = Math.max(0.001, (now - this.last.time) / 1000);
    const counts = new Map(this.hub.channelEventCounts());
    const rates = new Map<string, number>();
    for (const [channel, count] of counts) {
      rates.set(channel, round((count - (this.last.channels.get(channel) ?? count)) / seconds));
    }
    this.channelRates = rates;
    this.ring.push([now, connections, round((eventsReceived - this.last.events) / seconds)]);
    if (this.ring.length > SAMPLES_KEPT) this.ring.shift();
    this.last = { time: now, events: eventsReceived, channels: counts };
  }

  series(): Sample[] {
    return [...this.ring];
  }

  close(): void {
    clearInterval(this.timer);
  }
}

const round = (n: number): number => Math.round(n * 10) / 10;
