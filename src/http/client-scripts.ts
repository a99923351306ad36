// clientScripts(): serves public/ (sse.js, jquery.eventsource.js) and the npm
// package event-source-polyfill at <mount>/eventsource-polyfill.js, with cache
// headers and content types (docs/browser.md). The polyfill is resolved from
// node_modules, never copied: the browser scripts load it from beside themselves.
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import serveStatic from 'serve-static';
import { publicDir } from './public-dir.js';

export { publicDir };

/** The URL path, under the mount, at which the EventSource polyfill is served. */
export const POLYFILL_PATH = '/eventsource-polyfill.js';

/** The file of event-source-polyfill the browser gets (its minified build). */
export function polyfillFile(): string {
  // __dirname exists in both builds (the ESM build maps it to import.meta.dirname).
  const require = createRequire(join(__dirname, 'client-scripts.js'));
  try {
    return require.resolve('event-source-polyfill/src/eventsource.min.js');
  } catch {
    throw new Error(
      'clientScripts(): cannot find the npm package event-source-polyfill, which serves browsers without EventSource; run `npm install event-source-polyfill`',
    );
  }
}

export interface ClientScriptsOptions {
  /** Cache-Control max-age, in seconds. Defaults to 3600. */
  maxAge?: number;
}

export type StaticHandler = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/**
 * An Express (or node:http) static handler for the browser scripts:
 * `app.use('/media/sse-hub', clientScripts())`. Unknown paths and methods
 * other than GET/HEAD go to `next()`.
 */
export function clientScripts(options: ClientScriptsOptions = {}): StaticHandler {
  const maxAgeSeconds = options.maxAge ?? 3600;
  if (typeof maxAgeSeconds !== 'number' || !Number.isInteger(maxAgeSeconds) || maxAgeSeconds < 0) {
    throw new TypeError(`maxAge must be a whole number of seconds >= 0, got ${String(options.maxAge)}`);
  }
  const common = {
    index: false as const,
    maxAge: maxAgeSeconds * 1000,
    fallthrough: true,
    // The URL is not versioned, so revalidate by ETag/Last-Modified after max-age.
    setHeaders(res: ServerResponse, path: string) {
      if (path.endsWith('.js')) res.setHeader('Content-Type', 'text/javascript; charset=utf-8');
      res.setHeader('X-Content-Type-Options', 'nosniff');
    },
  };
  const scripts = serveStatic(publicDir(), common);
  const polyfill = polyfillFile();
  const polyfillServe = serveStatic(dirname(polyfill), common);
  const polyfillUrl = `/${basename(polyfill)}`;

  return (req, res, next) => {
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const pathname = queryAt === -1 ? url : url.slice(0, queryAt);
    if (pathname !== POLYFILL_PATH) {
      scripts(req, res, next);
      return;
    }
    // Only the one file of the package is reachable: the URL is rewritten to it.
    req.url = polyfillUrl + (queryAt === -1 ? '' : url.slice(queryAt));
    polyfillServe(req, res, (err?: unknown) => {
      req.url = url;
      next(err);
    });
  };
}
