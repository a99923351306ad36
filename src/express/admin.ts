// sseAdmin(): the admin dashboard (http/admin.ts) as Express middleware, for
// `app.use('/_sse-admin', sseAdmin({ hub, authorize }))`. Express strips the
// mount path from req.url, so the page's relative links work under any mount.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from '../core/errors.js';
import type { Hub } from '../core/hub.js';
import { createAdminHandler } from '../http/admin.js';
import { checkAccess } from '../http/publish.js';

export interface SseAdminOptions {
  /** The hub to show. */
  hub: Hub;
  /**
   * Who may see the dashboard's data and publish from it: return true to
   * allow (e.g. check your own session's admin role). Defaults to requests
   * from loopback that no proxy forwarded.
   */
  authorize?: (req: IncomingMessage) => boolean | Promise<boolean>;
}

export type SseAdminHandler = ((req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void) & {
  /** Stops the dashboard's sampler (it also stops with the process). */
  close(): void;
};

export function sseAdmin(options: SseAdminOptions): SseAdminHandler {
  const { authorize } = options;
  const access =
    authorize === undefined
      ? (req: IncomingMessage) => checkAccess(req, undefined, { action: 'the admin dashboard', flag: 'authorize' })
      : async (req: IncomingMessage) => {
          if ((await authorize(req)) !== true) throw new HttpError(403, 'not allowed to use the admin dashboard');
        };
  const admin = createAdminHandler({ hub: options.hub, access });
  const handler = ((req, res, next) => {
    const path = (req.url ?? '/').split('?', 1)[0] as string;
    const original = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/';
    const originalPath = original.split('?', 1)[0] as string;
    // `/_sse-admin` → `/_sse-admin/`, so that the page's relative URLs resolve under the mount.
    if (path === '/' && !originalPath.endsWith('/')) {
      res.writeHead(308, { Location: `${originalPath}/` }).end();
      return;
    }
    admin(req, res, path).catch((err: unknown) => {
      if (next) next(err);
      else if (!res.headersSent) res.writeHead(500).end();
    });
  }) as SseAdminHandler;
  handler.close = () => admin.close();
  return handler;
}
