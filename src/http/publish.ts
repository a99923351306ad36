// POST /publish (SPEC §4): JSON { channel, event?, data, id? } → hub.publish.
// Bounded body, loopback-only unless a bearer token is configured (or, in
// token mode, the bearer is a JWT whose `publish` claim grants the channel),
// and every refusal is a JSON error: 400 bad body, 401/403 auth, 413 too
// large, 503 broker down.
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { assertChannelName } from '../core/channel.js';
import { HttpError } from '../core/errors.js';
import { toEvent } from '../core/event.js';
import type { Hub } from '../core/hub.js';
import { recordRefusal } from './refusals.js';
import { sendError, sendJson, sendJsonError } from './respond.js';
import { grants, type ChannelGrant, type TokenVerifier } from './token.js';

export interface PublishOptions {
  hub: Hub;
  /** When set, require `Authorization: Bearer <token>` and allow any address. Defaults to loopback only. */
  token?: string;
  /** Largest accepted body, in bytes. Defaults to 2 MiB. */
  maxBodyBytes?: number;
  /**
   * Token mode: a bearer JWT these keys verify may publish, from any address,
   * to the channels of its `publish` claim (docs/tokens.md). Defaults to none.
   */
  tokens?: TokenVerifier;
  /** Decides who may publish instead of `token` and `tokens` (the admin dashboard's own rule). */
  access?: (req: IncomingMessage) => void | Promise<void>;
}

export const DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024;

export function createPublishHandler(
  options: PublishOptions,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { hub, token, tokens, access } = options;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;

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
        if (grant === undefined) checkAccess(req, token);
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
  const header = req.headers.authorization ?? '';
  if (tokens === undefined || !header.startsWith('Bearer ')) return undefined;
  const bearer = header.slice(7);
  if (token !== undefined && sameSecret(bearer, token)) return undefined;
  const claims = await tokens.verify(bearer);
  if (claims.publish === undefined) {
    throw new HttpError(403, 'the token has no "publish" claim: it may listen, not publish', 'SSE_ERR_TOKEN');
  }
  return claims.publish;
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
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
 * the admin dashboard): without a token, loopback only and never through a
 * proxy; with one, `Authorization: Bearer <token>` from anywhere, compared in
 * constant time. Throws HttpError 403 or 401.
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
    return;
  }
  const header = req.headers.authorization ?? '';
  if (!sameSecret(header.startsWith('Bearer ') ? header.slice(7) : '', token)) {
    throw new HttpError(401, `missing or wrong token for ${wording.action}: send Authorization: Bearer <token>`);
  }
}

function isForwarded(req: IncomingMessage): boolean {
  const h = req.headers;
  return h['x-forwarded-for'] !== undefined || h.forwarded !== undefined || h['x-real-ip'] !== undefined;
}

export function isLoopback(address: string | undefined): boolean {
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
