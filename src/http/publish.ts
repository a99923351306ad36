// POST /publish (docs/protocol.md): JSON { channel, event?, data, id? } → hub.publish.
// Bounded body; every refusal is a JSON error: 400 bad body, 401/403 auth,
// 413 too large, 415 not JSON, 503 broker down. Who may publish:
// - with a token, whoever sends `Authorization: Bearer <token>`, from anywhere;
// - in token mode, a bearer JWT whose `publish` claim grants the channel;
// - without either, a local program only: a loopback peer, not forwarded by a
//   proxy, and not a browser. A page open on this machine can reach loopback
//   too (a form post needs no CORS preflight, DNS rebinding gives any site a
//   loopback name), so a request that carries `Origin`/`Sec-Fetch-Site`, names a
//   Host that is not loopback, or is not application/json is refused
//   (SECURITY.md "Who may publish").
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { assertChannelName } from '../core/channel.js';
import { HttpError, isSseHubError } from '../core/errors.js';
import { toEvent } from '../core/event.js';
import type { Hub } from '../core/hub.js';
import { positiveInteger } from '../core/options.js';
import { recordRefusal } from './refusals.js';
import { sendError, sendJson, sendJsonError } from './respond.js';
import { grants, type ChannelGrant, type TokenVerifier } from './token.js';

export interface PublishOptions {
  hub: Hub;
  /** When set, require `Authorization: Bearer <token>` and allow any address. Defaults to loopback only. */
  token?: string;
  /** Largest accepted body, in bytes; a larger one gets 413. Defaults to 2 MiB (sse-runserver: `--max-publish-bytes`). */
  maxBodyBytes?: number;
  /**
   * Token mode: a bearer JWT these keys verify may publish, from any address,
   * to the channels of its `publish` claim (docs/tokens.md). Defaults to none.
   */
  tokens?: TokenVerifier;
  /** Decides who may publish instead of `token` and `tokens` (the admin dashboard's own rule). */
  access?: (req: IncomingMessage) => void | Promise<void>;
}

const DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024;

/** Why a publish was refused, as /metrics labels it (sse_hub_publish_refused_total{reason}). */
export type PublishRefusalReason = 'unauthorized' | 'forbidden' | 'payload-too-large' | 'unsupported-media-type';

const REFUSAL_REASONS: Readonly<Record<number, PublishRefusalReason>> = {
  401: 'unauthorized',
  403: 'forbidden',
  413: 'payload-too-large',
  415: 'unsupported-media-type',
};

const publishRefusals = new WeakMap<Hub, Record<PublishRefusalReason, number>>();

/**
 * Publishes refused so far through every publish handler of `hub` (/publish
 * and the admin dashboard's), by reason. Counted per hub, like the stream
 * caps, so /metrics reads one figure whichever handler refused.
 */
export function publishRefusalsOf(hub: Hub): Record<PublishRefusalReason, number> {
  let counts = publishRefusals.get(hub);
  if (counts === undefined) {
    counts = { unauthorized: 0, forbidden: 0, 'payload-too-large': 0, 'unsupported-media-type': 0 };
    publishRefusals.set(hub, counts);
  }
  return counts;
}

export function createPublishHandler(
  options: PublishOptions,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { hub, token, tokens, access } = options;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  positiveInteger('maxBodyBytes', maxBodyBytes, 'bytes');
  const refusals = publishRefusalsOf(hub);

  return async (req, res) => {
    try {
      if (req.method !== 'POST') {
        sendJsonError(res, 405, `use POST to publish, not ${req.method}`, { Allow: 'POST' });
        return;
      }
      let grant: ChannelGrant | undefined;
      if (access !== undefined) await access(req);
      else {
        grant = await publishGrant(req, token, tokens);
        if (grant === undefined) {
          checkAccess(req, token);
          // Neither token nor grant: only a local program, never a web page.
          if (token === undefined) checkNotBrowser(req);
        }
      }
      const body = parseBody(await readBody(req, maxBodyBytes));
      const channel = assertChannelName(body.channel, 'channel');
      if (grant !== undefined && !grants(grant, channel)) {
        throw new HttpError(403, `the token may not publish to channel "${channel}"`, 'SSE_ERR_FORBIDDEN');
      }
      const event = toEvent(body.event, body.data, body.id);
      const result = await hub.publish(channel, event);
      sendJson(res, 202, result);
    } catch (err) {
      const reason = isSseHubError(err) ? REFUSAL_REASONS[err.status] : undefined;
      if (reason !== undefined) refusals[reason]++;
      recordRefusal(hub, req, 'POST /publish', err);
      sendError(res, err, hub.options.logger);
    }
  };
}

/**
 * The `publish` claim of the request's bearer JWT, or undefined when the
 * request is not using one (no verifier, no bearer, or the bearer is the
 * static publish token), so the usual checks apply. A JWT that fails to
 * verify or has no publish claim is refused outright: an explicit bad
 * credential never falls back to the loopback rule.
 */
async function publishGrant(
  req: IncomingMessage,
  token: string | undefined,
  tokens: TokenVerifier | undefined,
): Promise<ChannelGrant | undefined> {
  const bearer = bearerOf(req);
  if (tokens === undefined || bearer === undefined) return undefined;
  if (token !== undefined && sameSecret(bearer, token)) return undefined;
  const claims = await tokens.verify(bearer);
  if (claims.publish === undefined) {
    throw new HttpError(403, 'the token has no "publish" claim: it may listen, not publish', 'SSE_ERR_TOKEN');
  }
  return claims.publish;
}

/** The credentials of `Authorization: Bearer …`; RFC 9110 §11.1: the scheme is case-insensitive. */
function bearerOf(req: IncomingMessage): string | undefined {
  const match = /^bearer +(.*)$/is.exec(req.headers.authorization ?? '');
  return match === null ? undefined : (match[1] as string);
}

/**
 * Compares SHA-256 digests, which always have the same length, with
 * timingSafeEqual: the time taken says nothing about the secret, its length
 * included.
 */
function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** What a refused request is told: the action refused and the flag that opens it up. */
export interface AccessWording {
  /** e.g. `publishing`. */
  action: string;
  /** e.g. `--publish-token`. */
  flag: string;
}

const PUBLISH_WORDING: AccessWording = { action: 'publishing', flag: '--publish-token' };

/**
 * The access rule of /publish, shared by every operator endpoint (/channels,
 * the admin dashboard): without a token, loopback only, never through a
 * proxy, only under a loopback Host name (DNS rebinding), and never for a
 * web page of another origin (isCrossSite); with one,
 * `Authorization: Bearer <token>` from anywhere, compared in constant time.
 * Throws HttpError 403 or 401.
 */
export function checkAccess(
  req: IncomingMessage,
  token: string | undefined,
  wording: AccessWording = PUBLISH_WORDING,
): void {
  if (token === undefined) {
    // A reverse proxy on the same machine connects from loopback too: a request
    // it forwarded carries its headers, and is not trusted as local.
    if (!isLoopback(req.socket.remoteAddress) || isForwarded(req)) {
      throw new HttpError(
        403,
        `${wording.action} is allowed from loopback only; set ${wording.flag} to allow it from elsewhere`,
      );
    }
    // DNS rebinding: a page of evil.example whose name now resolves to
    // 127.0.0.1 still sends `Host: evil.example`.
    if (!isLoopbackHost(req.headers.host)) {
      throw new HttpError(
        403,
        `without a token, ${wording.action} answers only to a loopback Host (127.0.0.1, localhost, [::1]); set ${wording.flag} to allow it under another name`,
      );
    }
    // A page of another site, open in a browser on this machine, reaches loopback too.
    if (isCrossSite(req)) {
      throw new HttpError(
        403,
        `${wording.action} refuses a web page of another site without a token; use it from its own page, or set ${wording.flag}`,
      );
    }
    return;
  }
  const bearer = bearerOf(req);
  if (bearer === undefined || !sameSecret(bearer, token)) {
    throw new HttpError(401, `missing or wrong token for ${wording.action}: send Authorization: Bearer <token>`);
  }
}

/**
 * A request a browser sent for a page of another origin, which loopback
 * trust must not serve: `Sec-Fetch-Site` other than same-origin or none (a
 * typed URL, a bookmark), or an `Origin` other than the server's own —
 * `http://` + the Host it was asked for, which browsers send on the
 * dashboard's own POSTs. Same-site counts as foreign: every port of
 * localhost is one site. Programs (curl, sse-send) send neither header.
 */
export function isCrossSite(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return true;
  const origin = req.headers.origin;
  return origin !== undefined && origin.toLowerCase() !== ownOrigin(req.headers.host);
}

/** `http://<host>` as a browser writes it in Origin (lower case, no default port); none without a Host. */
function ownOrigin(host: string | undefined): string | undefined {
  if (host === undefined) return undefined;
  try {
    return new URL(`http://${host}`).origin;
  } catch {
    return undefined;
  }
}

/**
 * /publish without a token: refuses a web page, even of its own origin.
 * Browsers send Origin on every POST (and Sec-Fetch-Site on every request);
 * sse-send, curl and server-side code send neither. And only
 * `application/json` (parameters such as charset allowed): the types a page
 * may post without a CORS preflight (text/plain, forms) are refused with 415.
 */
function checkNotBrowser(req: IncomingMessage): void {
  if (req.headers.origin !== undefined || req.headers['sec-fetch-site'] !== undefined) {
    throw new HttpError(
      403,
      'publishing from a web page is refused without a token: publish from a local program, or set --publish-token',
    );
  }
  const type = (req.headers['content-type'] ?? '').split(';', 1)[0]?.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new HttpError(
      415,
      `send the body as Content-Type: application/json, not ${type === '' || type === undefined ? 'without a type' : JSON.stringify(type)}`,
    );
  }
}

/** A Host header naming loopback: 127.0.0.1, localhost or [::1], with or without a port. */
export function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = /^(\[[^\]]*\]|[^:]*)(?::\d{1,5})?$/.exec(host.trim().toLowerCase())?.[1];
  return name === '127.0.0.1' || name === 'localhost' || name === '[::1]';
}

function isForwarded(req: IncomingMessage): boolean {
  const h = req.headers;
  return h['x-forwarded-for'] !== undefined || h.forwarded !== undefined || h['x-real-ip'] !== undefined;
}

function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.reject(new HttpError(413, `the body is larger than ${limit} bytes`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new HttpError(413, `the body is larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

interface PublishBody {
  channel?: unknown;
  event?: unknown;
  data?: unknown;
  id?: unknown;
}

function parseBody(text: string): PublishBody {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'the body is not JSON: send {"channel": "...", "event": "...", "data": ...}');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(400, 'the body must be a JSON object: {"channel": "...", "event": "...", "data": ...}');
  }
  const fields = body as PublishBody;
  if (fields.channel === undefined) throw new HttpError(400, 'the body lacks "channel"');
  if (fields.data === undefined) throw new HttpError(400, 'the body lacks "data"');
  return fields;
}
