// The process-wide default hub behind sendEvent() and sseMiddleware() without
// a `hub` option, so a model hook can publish without passing a hub around.
import type { Hub, SendResult } from './core/hub.js';
import type { HubOptions } from './core/options.js';
import { createHub } from './create-hub.js';

let defaultHub: Hub | undefined;

/**
 * Sets up the default hub (replacing, and closing, any earlier one).
 * Returns it so the caller can close it on shutdown.
 */
export function configure(options: HubOptions | Hub = {}): Hub {
  const previous = defaultHub;
  defaultHub = isHub(options) ? options : createHub(options);
  if (previous !== undefined && previous !== defaultHub) void previous.close();
  return defaultHub;
}

/** The default hub, created from the environment on first use. */
export function getDefaultHub(): Hub {
  defaultHub ??= createHub();
  return defaultHub;
}

/**
 * django_sse's send_event: publishes `data` (string, or JSON-encoded) as
 * event `type` on `channel` through the default hub.
 */
export function sendEvent(type: string, data: unknown, channel: string): Promise<SendResult> {
  return getDefaultHub().sendEvent(type, data, channel);
}

function isHub(value: unknown): value is Hub {
  return typeof value === 'object' && value !== null && typeof (value as Hub).attach === 'function';
}
