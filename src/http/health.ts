// GET /healthz (docs/operations.md#health-healthz): 200 while the broker's subscription connection is
// up, 503 as soon as it is lost — it follows the subscription, not the process.
// Under sse-runserver --workers the answer is the whole server's: the worker
// that takes the request asks the primary, which asks every worker (see
// cli/cluster.ts), so a probe never sees 200 while one worker cannot publish.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Hub } from '../core/hub.js';
import { redactUrls } from '../core/redact.js';
import { sendJson } from './respond.js';

/** What one process (or the whole cluster) says about its health. */
export interface HealthReport {
  ok: boolean;
  broker: string;
  /** Why not ok, for people reading the probe's body. */
  error?: string;
  /** Workers that answered for the server (only under --workers). */
  workers?: number;
}

/** Where the handler gets its answer: this process, or the cluster's aggregate. */
export type HealthSource = () => Promise<HealthReport>;

/** This process's health, from its hub. */
export function hubHealth(hub: Hub): HealthReport {
  // A broker's name or message may one day quote its URL: never its credentials.
  const broker = redactUrls(hub.broker.name);
  if (hub.isHealthy()) return { ok: true, broker };
  const error = hub.closed
    ? 'the hub is shutting down'
    : `the ${broker} broker's subscription connection is down; events cannot be delivered until it is back`;
  return { ok: false, broker, error: redactUrls(error) };
}

export function createHealthHandler(
  source: Hub | HealthSource,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const read: HealthSource = typeof source === 'function' ? source : async () => hubHealth(source);
  return async (_req, res) => {
    const report = await read();
    sendJson(res, report.ok ? 200 : 503, report);
  };
}
