// GET /healthz (SPEC §4): 200 while the broker's subscription connection is
// up, 503 as soon as it is lost — it follows the subscription, not the process.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Hub } from '../core/hub.js';
import { redactUrls } from '../core/redact.js';
import { sendJson } from './respond.js';

export function createHealthHandler(hub: Hub): (req: IncomingMessage, res: ServerResponse) => void {
  return (_req, res) => {
    const broker = hub.broker.name;
    if (hub.isHealthy()) {
      sendJson(res, 200, { ok: true, broker: redactUrls(broker) });
    } else {
      const error = hub.closed
        ? 'the hub is shutting down'
        : `the ${broker} broker's subscription connection is down; events cannot be delivered until it is back`;
      // A broker's name or message may one day quote its URL: never its credentials.
      sendJson(res, 503, { ok: false, broker: redactUrls(broker), error: redactUrls(error) });
    }
  };
}
