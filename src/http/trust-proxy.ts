// Which client a request comes from behind a reverse proxy (sse-runserver
// --trust-proxy), by Express's own rule (`trust proxy`, the proxy-addr
// package): walk X-Forwarded-For from the right, past the addresses of the
// proxies named, and stop at the first one that is not a trusted proxy. The
// hops to its left were written by the client itself, so they are never
// believed: a client cannot pick the address its streams are counted under.
import type { IncomingMessage } from 'node:http';
import proxyAddr from 'proxy-addr';
import { OptionError } from '../core/errors.js';

/** Finds the client address of a request; the socket's when no trusted proxy sent it. */
export type ClientAddressOf = (req: IncomingMessage) => string;

/**
 * Compiles a list of proxies to trust: IP addresses, CIDR ranges
 * (`10.0.0.0/8`), or the names `loopback`, `linklocal`, `uniquelocal`.
 * Throws OptionError for anything else.
 */
export function trustProxy(proxies: readonly string[]): ClientAddressOf {
  if (proxies.length === 0) {
    throw new OptionError(
      'trustProxy must name at least one proxy address, CIDR range, loopback, linklocal or uniquelocal',
    );
  }
  let trusted: (address: string, hop: number) => boolean;
  try {
    trusted = proxyAddr.compile([...proxies]);
  } catch (err) {
    throw new OptionError(
      `trustProxy: ${(err as Error).message}; give IP addresses, CIDR ranges (10.0.0.0/8), loopback, linklocal or uniquelocal`,
    );
  }
  return (req) => proxyAddr(req, trusted);
}
