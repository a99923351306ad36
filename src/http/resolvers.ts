// Channel resolvers decide which channels a request listens on (SPEC §3):
// fromQuery() for standalone use, fromSession() — the default — for the
// logged-in user's own channel plus `all`, as django_sse's handler did.
import type { IncomingMessage } from 'node:http';
import { isChannelName } from '../core/channel.js';
import { HttpError } from '../core/errors.js';

/** Returns the channels a request asks for; may throw HttpError (403/400). */
export type ChannelResolver = (req: IncomingMessage) => readonly string[] | Promise<readonly string[]>;

/** The `req.session` express-session adds; sse-hub only reads it. */
export type SessionData = Record<string, unknown>;

/** Finds the username in a session; returns undefined for an anonymous one. */
export type GetUser = (session: SessionData, req: IncomingMessage) => string | undefined | Promise<string | undefined>;

export const BROADCAST_CHANNEL = 'all';

export interface FromQueryOptions {
  /** Query parameter holding the comma-separated channels. Defaults to `channels`. */
  param?: string;
  /** Channels used when the parameter is absent or empty. Defaults to none (400). */
  default?: readonly string[];
}

/** `?channels=all,foo` (and repeated `?channels=a&channels=b`). Validation happens in subscribe. */
export function fromQuery(options: FromQueryOptions = {}): ChannelResolver {
  const param = options.param ?? 'channels';
  const fallback = options.default ?? [];
  return (req) => {
    const values = queryOf(req).getAll(param);
    const asked = values
      .flatMap((v) => v.split(','))
      .map((v) => v.trim())
      .filter((v) => v !== '');
    return asked.length > 0 ? values : fallback;
  };
}

export interface FromSessionOptions {
  /** Finds the username. Defaults to session.user.username, session.username, then session.passport.user. */
  getUser?: GetUser;
}

/**
 * Subscribes the session's user to `[username, 'all']`; the query string
 * cannot add channels. Throws 403 (code SSE_ERR_ANONYMOUS) without a user.
 */
export function fromSession(options: FromSessionOptions = {}): ChannelResolver {
  const getUser = options.getUser ?? defaultGetUser;
  return async (req) => {
    const session = (req as IncomingMessage & { session?: unknown }).session;
    const user = isRecord(session) ? await getUser(session, req) : undefined;
    return channelsForUser(user);
  };
}

/** The channels of a (possibly anonymous) user; shared with the CLI's cookie-based session mode. */
export function channelsForUser(user: unknown): string[] {
  if (user === undefined || user === null || user === '') {
    throw new HttpError(403, 'not logged in: this stream needs an authenticated session', 'SSE_ERR_ANONYMOUS');
  }
  if (!isChannelName(user)) {
    throw new HttpError(
      403,
      'the session user name is not a valid channel name (1-128 characters of A-Z a-z 0-9 _ . : @ -)',
      'SSE_ERR_FORBIDDEN',
    );
  }
  return user === BROADCAST_CHANNEL ? [BROADCAST_CHANNEL] : [user, BROADCAST_CHANNEL];
}

/** session.user.username, session.username, then session.passport.user (a string). */
export function defaultGetUser(session: SessionData): string | undefined {
  const user = session.user;
  if (isRecord(user) && typeof user.username === 'string') return user.username;
  if (typeof session.username === 'string') return session.username;
  const passport = session.passport;
  if (isRecord(passport) && typeof passport.user === 'string') return passport.user;
  return undefined;
}

/** Reads a dotted path such as `auth.user.name` from a session; for --session-user-path. */
export function getUserAt(path: string): GetUser {
  const keys = path.split('.');
  return (session) => {
    let value: unknown = session;
    for (const key of keys) value = isRecord(value) ? value[key] : undefined;
    return typeof value === 'string' ? value : undefined;
  };
}

export function queryOf(req: IncomingMessage): URLSearchParams {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
