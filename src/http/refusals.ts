// Which refused requests reach the hub's refusal log (core/refusals.ts), for
// the admin dashboard: 401s, 403s and limits hit. Plain 400s (a malformed
// request) are a client's bug, not an operator's concern, and are left out.
import type { IncomingMessage } from 'node:http';
import { isSseHubError, type SseHubErrorCode } from '../core/errors.js';
import type { Hub } from '../core/hub.js';
import type { RefusalKind } from '../core/refusals.js';

/** Error codes that mean a limit was hit. */
const CAPS: ReadonlySet<SseHubErrorCode> = new Set([
  'SSE_ERR_TOO_MANY_CHANNELS',
  'SSE_ERR_TOO_MANY_CONNECTIONS',
  'SSE_ERR_PAYLOAD_TOO_LARGE',
]);

/** The kind of refusal `err` is, or undefined when it is not one the dashboard lists. */
export function refusalKind(err: unknown): RefusalKind | undefined {
  if (!isSseHubError(err)) return undefined;
  if (CAPS.has(err.code)) return 'cap';
  if (err.status === 401) return 'unauthorized';
  if (err.status === 403) return 'forbidden';
  return undefined;
}

/** Records `err` in the hub's refusal log when it is a refusal: `<what> from <address>: <message>`. */
export function recordRefusal(hub: Hub, req: IncomingMessage, what: string, err: unknown): void {
  const kind = refusalKind(err);
  if (kind === undefined) return;
  hub.recordRefusal(kind, `${what} from ${req.socket.remoteAddress ?? 'unknown'}: ${(err as Error).message}`);
}
