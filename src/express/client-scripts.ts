// clientScripts(): serves public/ (sse.js, jquery.eventsource.js) and the
// EventSource polyfill with cache headers and content types (SPEC §3, §5).
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import serveStatic from 'serve-static';

/** The package's own public/ folder (found upward from this file, in src/ or dist/). */
export function publicDir(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'public', 'sse.js')) && dirname(dir) !== dir) dir = dirname(dir);
  return join(dir, 'public');
}

export interface ClientScriptsOptions {
  /** Cache-Control max-age, in seconds. Defaults to 3600. */
  maxAge?: number;
}

export type StaticHandler = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/** An Express static handler for the browser scripts: `app.use('/media/sse-hub', clientScripts())`. */
export function clientScripts(options: ClientScriptsOptions = {}): StaticHandler {
  const maxAge = (options.maxAge ?? 3600) * 1000;
  const serve = serveStatic(publicDir(), {
    index: false,
    maxAge,
    fallthrough: true,
    setHeaders(res, path) {
      if (path.endsWith('.js')) res.setHeader('Content-Type', 'text/javascript; charset=utf-8');
      res.setHeader('X-Content-Type-Options', 'nosniff');
    },
  });
  return (req, res, next) => serve(req, res, next);
}
