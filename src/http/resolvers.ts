// Channel resolvers decide which channels a request listens on
// (docs/sessions.md#which-channels-a-request-gets):
// fromQuery() for standalone use, fromSession() — the default — for the
// logged-in user's own channel plus `all`, as django_sse's handler did.
import type { IncomingMessage } from 'node:http';
import { assertChannelName, isChannelName } from '../core/channel.js';
import type { Connection } from '../core/connection.js';
import { HttpError, OptionError } from '../core/errors.js';

/** Returns the channels a request asks for; may throw HttpError (403/400). */
export interface ChannelResolver {
  (req: IncomingMessage): readonly string[] | Promise<readonly string[]>;
  /**
   * Optional: called once the stream of `req` is open. A resolver that must
   * end streams later (the session cookie re-check, docs/sessions.md#logging-out) keeps it here.
   */
  attached?(req: IncomingMessage, connection: Connection): void;
  /** Optional: the user `req` was resolved for (session or token mode), counted in presence. */
  userOf?(req: IncomingMessage): string | undefined;
}

/** The `req.session` express-session adds; sse-hub only reads it. */
export type SessionData = Record<string, unknown>;

/** Finds the username in a session; returns undefined for an anonymous one. */
export type GetUser = (session: SessionData, req: IncomingMessage) => string | undefined | Promise<string | undefined>;

export const BROADCAST_CHANNEL = 'all';

const NO_SESSION_MESSAGE =
  'this stream finds the user in req.session, but the request has no session: mount express-session before ' +
  'sseMiddleware() (app.use(session({ ... })) first), or pass channels: fromQuery() for a stream without logins';

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

/** Decides one extra channel a logged-in user asked for in the query; true adds it. */
export type AuthorizeExtra = (req: IncomingMessage, channel: string, user: string) => boolean | Promise<boolean>;

/** What a session stream may carry beyond `[username, 'all']` (docs/sessions.md#what-the-query-may-ask-for). */
export interface SessionChannelOptions {
  /** Query parameter naming extra channels, comma-separated. Defaults to `channels`. */
  param?: string;
  /** Channels any logged-in user may add by naming them in the query. Defaults to none. */
  publicChannels?: readonly string[];
  /**
   * Asked for every queried channel that is neither the user's own, `all`, nor
   * in publicChannels; true adds it, false refuses the request with 403.
   * Defaults to refusing every such channel.
   */
  authorize?: AuthorizeExtra;
  /**
   * The user's own channel, from the username. Defaults to the bare username,
   * as django_sse (`sendEvent(..., 'bob')` reaches bob). A prefix such as
   * `userChannelPrefix('user:')` keeps user names out of the namespace of
   * other channels (docs/sessions.md#user-channels). The result must be a
   * valid channel name, or the stream is refused with 403.
   */
  userChannel?: (user: string) => string;
}

/** A userChannel mapping that prepends `prefix`: `user:` gives `user:bob`. Checked at once. */
export function userChannelPrefix(prefix: string): (user: string) => string {
  if (typeof prefix !== 'string' || !/^[A-Za-z0-9_.:@-]{0,100}$/.test(prefix)) {
    throw new OptionError(
      `the user channel prefix must be up to 100 characters of A-Z a-z 0-9 _ . : @ -, got ${JSON.stringify(prefix)}`,
    );
  }
  return (user) => prefix + user;
}

export interface FromSessionOptions extends SessionChannelOptions {
  /** Finds the username. Defaults to session.user.username, session.username, then session.passport.user. */
  getUser?: GetUser;
}

/**
 * Subscribes the session's user to `[username, 'all']`. The query string can
 * only add public channels (publicChannels / authorize); anything else it
 * names is refused with 403. Throws 403 (code SSE_ERR_ANONYMOUS) without a
 * user, and 500 (SSE_ERR_NO_SESSION) when the request has no `req.session`
 * at all: express-session is not mounted before the middleware.
 */
export function fromSession(options: FromSessionOptions = {}): ChannelResolver {
  const getUser = options.getUser ?? defaultGetUser;
  const extras = sessionChannelRule(options);
  const users = new WeakMap<IncomingMessage, string>();
  const resolve: ChannelResolver = async (req) => {
    const session = (req as IncomingMessage & { session?: unknown }).session;
    // Not "not logged in": a missing session is a set-up mistake, and saying
    // so sends the developer to the fix rather than hunting a login bug.
    if (session === undefined) throw new HttpError(500, NO_SESSION_MESSAGE, 'SSE_ERR_NO_SESSION');
    const user = isRecord(session) ? await getUser(session, req) : undefined;
    const channels = await extras(req, user);
    users.set(req, user as string);
    return channels;
  };
  resolve.userOf = (req) => users.get(req);
  return resolve;
}

/**
 * The channels of a session stream: the user's own channel and `all`
 * (channelsForUser), plus what the query may add. A user whose own channel is
 * also a public channel is refused with 403: that user would otherwise get the
 * public channel's events as private ones, and the events sent to "their"
 * channel would reach everyone who adds the public one (docs/sessions.md).
 *
 * The rule for the query in session mode (docs/sessions.md#what-the-query-may-ask-for): the result is always the
 * user's own channels. With no public channels and no `authorize`, the query
 * is ignored (in this mode the query cannot add channels), so `?channels=admin` as bob
 * gets bob's channels only. Once public channels or `authorize` make the query
 * meaningful, each queried channel must be public or accepted; one that is
 * neither refuses the whole request (403), so a page never silently gets less
 * than it asked for. Either way the query never widens what the session
 * allows. Shared by fromSession() and the CLI's cookie-based session mode.
 */
export function sessionChannelRule(
  options: SessionChannelOptions = {},
): (req: IncomingMessage, user: unknown) => Promise<string[]> {
  const param = options.param ?? 'channels';
  const publicChannels = new Set((options.publicChannels ?? []).map((c) => assertChannelName(c, 'public channel')));
  const { authorize, userChannel } = options;
  if (userChannel !== undefined && typeof userChannel !== 'function') {
    throw new OptionError('userChannel must be a function from a username to a channel name');
  }
  if (publicChannels.size === 0 && authorize === undefined) {
    return (_req, user) => Promise.resolve(channelsForUser(user, userChannel));
  }
  return async (req, name) => {
    const own = channelsForUser(name, userChannel);
    const user = name as string;
    const mine = own[0] as string;
    if (mine !== BROADCAST_CHANNEL && publicChannels.has(mine)) {
      throw new HttpError(
        403,
        `the user's own channel "${mine}" is also a public channel: refused so that its events stay apart; give user channels a prefix (userChannel / --user-channel-prefix)`,
        'SSE_ERR_FORBIDDEN',
      );
    }
    const result = [...own];
    const seen = new Set(own); // a Set: the query may name thousands of channels
    for (const raw of queryOf(req).getAll(param)) {
      for (const part of raw.split(',')) {
        const channel = part.trim();
        if (channel === '' || seen.has(channel)) continue;
        assertChannelName(channel); // 400 for a name that is not a channel at all
        if (
          publicChannels.has(channel) ||
          (authorize !== undefined && (await authorize(req, channel, user)) === true)
        ) {
          result.push(channel);
          seen.add(channel);
          continue;
        }
        throw new HttpError(
          403,
          `not allowed to listen on channel "${channel}": a session stream carries the user's own channel and "${BROADCAST_CHANNEL}", plus public channels only`,
          'SSE_ERR_FORBIDDEN',
        );
      }
    }
    return result;
  };
}

/**
 * The channels of a (possibly anonymous) user: `[userChannel(user), 'all']`.
 * Shared with the CLI's cookie-based session mode.
 */
export function channelsForUser(user: unknown, userChannel?: (user: string) => string): string[] {
  if (user === undefined || user === null || user === '') {
    throw new HttpError(403, 'not logged in: this stream needs an authenticated session', 'SSE_ERR_ANONYMOUS');
  }
  const channel = typeof user === 'string' && userChannel !== undefined ? userChannel(user) : user;
  if (!isChannelName(channel)) {
    throw new HttpError(
      403,
      userChannel === undefined
        ? 'the session user name is not a valid channel name (1-128 characters of A-Z a-z 0-9 _ . : @ -)'
        : "the session user's channel is not a valid channel name (1-128 characters of A-Z a-z 0-9 _ . : @ -)",
      'SSE_ERR_FORBIDDEN',
    );
  }
  return channel === BROADCAST_CHANNEL ? [BROADCAST_CHANNEL] : [channel, BROADCAST_CHANNEL];
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
