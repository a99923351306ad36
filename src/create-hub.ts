// createHub(): options → broker → Hub. The composition root of the library.
import { Hub } from './core/hub.js';
import { resolveHubOptions, type HubOptions } from './core/options.js';
import { createBroker } from './brokers/create-broker.js';

/**
 * Creates a hub. With no options: the memory broker, unless REDIS_URL or
 * SSE_REDIS_URL is set (docs/brokers.md). Options are validated now (OptionError).
 */
export function createHub(options: HubOptions = {}): Hub {
  const resolved = resolveHubOptions(options);
  return new Hub(createBroker(resolved), resolved);
}
