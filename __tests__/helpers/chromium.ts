// Headless Debian chromium through playwright-core (never a downloaded browser),
// and a small Express app that serves test pages, jQuery 3/4, the client
// scripts and an SSE endpoint from one origin, as a real site would.
import type { AddressInfo } from 'node:net';
import http from 'node:http';
import express from 'express';
import { chromium, type Browser, type Page } from 'playwright-core';
import { clientScripts, createHub, fromQuery, sseMiddleware } from '../../src/index';
import type { Hub } from '../../src/core/hub';
import type { HubOptions } from '../../src/core/options';

export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Flags for a quiet, sandbox-free headless run in a container. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true, timeout: 30_000 });
}

/** The jQuery builds the pages are tested with: npm `jquery` (4) and `jquery3` (npm alias of 3.x). */
export const JQUERIES = {
  jquery4: require.resolve('jquery'),
  jquery3: require.resolve('jquery3'),
} as const;
export type JQueryName = keyof typeof JQUERIES;

/**
 * Collects the page's console errors and uncaught exceptions, so a test can
 * assert that the scripts ran cleanly.
 */
export function pageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // Chromium reports a dropped stream (server restart) as a console error; that one is expected.
    if (msg.type() === 'error' && !/net::ERR_|Failed to load resource/.test(msg.text())) errors.push(msg.text());
  });
  return errors;
}

export interface PageServerOptions {
  /** Options of the hub serving `/sse/`. */
  hub?: HubOptions;
  /** Extra hubs: path (e.g. `/quiet/`) → hub options. */
  extraStreams?: Record<string, HubOptions>;
}

/**
 * One origin with: `/static/sse-hub/*` (clientScripts()), `/vendor/jquery3.js`
 * and `/vendor/jquery4.js`, `/sse/?channels=...` (sseMiddleware + fromQuery),
 * and `/page/<name>` for HTML registered with `page()`. `restart()` closes
 * everything (streams end, the port is freed) and listens again on the same
 * port with a new hub: a server restart as a browser sees it.
 */
export class PageServer {
  hub!: Hub;
  port = 0;
  private server: http.Server | undefined;
  private hubs: Hub[] = [];
  private readonly pages = new Map<string, string>();
  private readonly options: PageServerOptions;
  /** Each extra stream path → its current hub. */
  readonly streams = new Map<string, Hub>();

  constructor(options: PageServerOptions = {}) {
    this.options = options;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Registers HTML at `/page/<name>` and returns its absolute URL. */
  page(name: string, html: string): string {
    this.pages.set(name, html);
    return `${this.url}/page/${name}`;
  }

  async start(): Promise<void> {
    const app = express();
    this.hub = createHub({ broker: 'memory', retry: 250, ...this.options.hub });
    this.hubs = [this.hub];
    app.use('/static/sse-hub', clientScripts());
    for (const [name, file] of Object.entries(JQUERIES)) {
      app.get(`/vendor/${name}.js`, (_req, res) => res.sendFile(file));
    }
    app.get('/sse/', sseMiddleware({ hub: this.hub, channels: fromQuery() }));
    for (const [path, options] of Object.entries(this.options.extraStreams ?? {})) {
      const hub = createHub({ broker: 'memory', retry: 250, ...options });
      this.hubs.push(hub);
      this.streams.set(path, hub);
      app.get(path, sseMiddleware({ hub, channels: fromQuery() }));
    }
    app.get('/page/:name', (req, res) => {
      const html = this.pages.get(req.params.name);
      if (html === undefined) res.status(404).send('no such page');
      else res.type('html').set('Cache-Control', 'no-store').send(html);
    });
    const server = http.createServer(app);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Ends every stream cleanly (hub.close()), then closes the listening socket. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await Promise.all(this.hubs.map((hub) => hub.close()));
    if (server === undefined) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  /** stop() then start() on the same port, with fresh hubs. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

/** A page that loads jQuery (when named), then the given client scripts from the static mount. */
export function htmlPage(options: {
  jquery?: JQueryName;
  scripts: string[];
  body?: string;
  bodyAttrs?: string;
  head?: string;
}): string {
  const jquery = options.jquery ? `<script src="/vendor/${options.jquery}.js"></script>` : '';
  const scripts = options.scripts.map((s) => `<script src="/static/sse-hub/${s}"></script>`).join('\n');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>sse-hub test</title>
${options.head ?? ''}
${jquery}
${scripts}
</head>
<body ${options.bodyAttrs ?? ''}>
${options.body ?? ''}
</body></html>`;
}
