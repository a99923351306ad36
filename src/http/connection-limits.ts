// Connection caps for the event stream (SECURITY.md): at most
// `maxConnections` streams per hub, and at most `maxConnectionsPerIp` from one
// client address; an sseMiddleware may add caps of its own, checked as well
// as the hub's (a child limiter). Invariant: a slot is taken before anything slow (the session
// lookup) and given back exactly once, when the response closes — so requests
// still being resolved count too, and the counts return to zero.
//
// A refused stream is answered 200 + `retry:` + end, never a non-200: after a
// non-200 EventSource gives up for good, and the page would stay dead after
// the crowd has gone (docs/protocol.md).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIPv6 } from 'node:net';
import { writeStreamHead } from '../core/connection.js';
import { encodeComment } from '../core/frame.js';
import type { Hub } from '../core/hub.js';
import { jitteredRetryMs } from '../core/retry.js';

/** Why a stream was answered with `retry:` and ended instead of opened. */
export type StreamRefusalReason = 'max-connections' | 'max-connections-per-ip' | 'session-store';

export interface ConnectionLimitOptions {
  /** Streams open (or being opened) at once; 0 turns the cap off. */
  maxConnections: number;
  /** Streams open at once from one client address (IPv6: one /64); 0 turns the cap off. */
  maxConnectionsPerIp: number;
  /** The `retry:` sent with a refusal, before jitter, in ms; raised to at least 1000. */
  retry: number;
}

export interface ConnectionLimitStats {
  /** Streams holding a slot. */
  open: number;
  /** Distinct client addresses holding a slot. */
  addresses: number;
  /** Streams refused so far, by reason. */
  refused: Record<StreamRefusalReason, number>;
}

/** The slot a response holds, until it closes. */
const SLOT = Symbol('sse-hub.connection-slot');
/** A slot in one limiter: the limiter and the address key it counted (undefined: the total only). */
type Slot = [limiter: ConnectionLimiter, key: string | undefined];
type TaggedResponse = ServerResponse & { [SLOT]?: Slot[] };

/** The 'close' listener of every admitted response; `this` is the response. Gives the slots back once. */
function releaseSlot(this: TaggedResponse): void {
  const slots = this[SLOT];
  if (slots === undefined) return;
  this[SLOT] = undefined;
  for (const [limiter, key] of slots) limiter.release(key);
}

/** The shortest `retry:` a refusal sends: a crowd must not come straight back. */
export const MIN_REFUSAL_RETRY_MS = 1000;

export class ConnectionLimiter {
  private readonly options: ConnectionLimitOptions;
  private open = 0;
  private readonly perAddress = new Map<string, number>();
  private readonly refused: Record<StreamRefusalReason, number>;
  /** This limiter, then its parent's chain: where a stream takes its slots. */
  private readonly chain: readonly ConnectionLimiter[];

  /**
   * With a `parent` (the hub's limiter), a stream must fit under both caps,
   * and refusals are counted in the parent, which /metrics reads.
   */
  constructor(options: ConnectionLimitOptions, parent?: ConnectionLimiter) {
    this.options = options;
    this.chain = [this, ...(parent?.chain ?? [])];
    this.refused = parent?.refused ?? { 'max-connections': 0, 'max-connections-per-ip': 0, 'session-store': 0 };
  }

  /**
   * Takes a slot for the stream of `req` here and in every parent, given back
   * when `res` closes; or, over a cap, returns the reason and takes nothing.
   */
  admit(req: IncomingMessage, res: ServerResponse): StreamRefusalReason | undefined {
    const address = clientAddress(req);
    const slots: Slot[] = [];
    for (const limiter of this.chain) {
      const taken = limiter.take(address);
      if (typeof taken === 'string') {
        for (const [held, key] of slots) held.release(key);
        return taken;
      }
      slots.push([limiter, taken.key]);
    }
    // One shared listener and a tag on the response, not a closure per
    // stream: an idle stream costs as little here as in Connection.
    (res as TaggedResponse)[SLOT] = slots;
    res.on('close', releaseSlot);
    if (res.destroyed) releaseSlot.call(res);
    return undefined;
  }

  /** Counts one stream from `address` here, or says which cap it would pass. */
  private take(address: string): { key: string | undefined } | StreamRefusalReason {
    const { maxConnections, maxConnectionsPerIp } = this.options;
    if (maxConnections > 0 && this.open >= maxConnections) return 'max-connections';
    const key = maxConnectionsPerIp > 0 ? addressKey(address) : undefined;
    const count = key === undefined ? 0 : (this.perAddress.get(key) ?? 0);
    if (key !== undefined && count >= maxConnectionsPerIp) return 'max-connections-per-ip';
    this.open++;
    if (key !== undefined) this.perAddress.set(key, count + 1);
    return { key };
  }

  /** Gives back a slot taken for `key` (undefined: counted in the total only); called when the response closes. */
  release(key: string | undefined): void {
    this.open--;
    if (key === undefined) return;
    const left = (this.perAddress.get(key) ?? 1) - 1;
    if (left === 0) this.perAddress.delete(key);
    else this.perAddress.set(key, left);
  }

  /** Answers a stream that is not opened: 200, a jittered `retry:`, a comment naming why, end. */
  refuse(req: IncomingMessage, res: ServerResponse, reason: StreamRefusalReason): void {
    this.refused[reason]++;
    refuseStream(req, res, this.options.retry, reason);
  }

  stats(): ConnectionLimitStats {
    return { open: this.open, addresses: this.perAddress.size, refused: { ...this.refused } };
  }
}

/**
 * 200 + `retry:` (jittered, at least 1 s) + end. The comment says why for
 * whoever reads the stream by hand; EventSource ignores it and reconnects.
 */
export function refuseStream(req: IncomingMessage, res: ServerResponse, retryMs: number, reason: string): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const retry = jitteredRetryMs(Math.max(MIN_REFUSAL_RETRY_MS, retryMs));
  writeStreamHead(req, res);
  res.end(Buffer.concat([Buffer.from(`retry: ${retry}\n`), encodeComment(`refused: ${reason}; retry later`)]));
}

const limiters = new WeakMap<Hub, ConnectionLimiter>();

/** The one limiter of a hub, shared by every handler serving it (the caps are per hub, per process). */
export function connectionLimiterOf(hub: Hub): ConnectionLimiter {
  let limiter = limiters.get(hub);
  if (limiter === undefined) {
    const { maxConnections, maxConnectionsPerIp, retry } = hub.options;
    limiter = new ConnectionLimiter({ maxConnections, maxConnectionsPerIp, retry });
    limiters.set(hub, limiter);
  }
  return limiter;
}

/**
 * The client's address: Express's `req.ip` when present (it honours the app's
 * `trust proxy` setting, so behind a proxy it names the client, not the
 * proxy), else the socket's peer address.
 */
export function clientAddress(req: IncomingMessage): string {
  const ip = (req as IncomingMessage & { ip?: unknown }).ip;
  if (typeof ip === 'string' && ip !== '') return ip;
  return req.socket.remoteAddress ?? 'unknown';
}

/**
 * The key an address is counted under: IPv4 as is (also when IPv4-mapped),
 * IPv6 by its /64 — one subscriber line usually gets a whole /64, so counting
 * single IPv6 addresses would let one client pick 2^64 fresh ones.
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped !== null) return mapped[1] as string;
  const bare = address.split('%', 1)[0] as string; // drop a zone id (fe80::1%eth0)
  if (!isIPv6(bare)) return address;
  return `${expandIPv6(bare).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address, as lower-case hex without leading zeros. */
function expandIPv6(address: string): string[] {
  let text = address.toLowerCase();
  // A trailing dotted quad (::ffff:1.2.3.4, 64:ff9b::1.2.3.4) becomes two groups.
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad !== null) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? [] : Array.from({ length: 8 - left.length - right.length }, () => '0');
  return [...left, ...zeros, ...right].map((group) => parseInt(group, 16).toString(16));
}
