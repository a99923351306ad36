// Session mode without express-session in this process (docs/sessions.md#as-a-second-process-sse-runserver---channels-session): the
// sid comes from the web app's signed express-session cookie, the session from
// the same Redis keys connect-redis writes. Invariant: read-only — only GET/
// MGET, never SET, EXPIRE or touch, so a long SSE request never extends or
// re-saves a session, and logging out in the app ends the stream here.
import type { IncomingMessage } from 'node:http';
import { parseCookie } from 'cookie';
import { unsign } from 'cookie-signature';
import type { SessionKeyReader } from '../core/broker.js';
import type { Connection } from '../core/connection.js';
import { HttpError, OptionError, SessionStoreUnavailableError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import {
  defaultGetUser,
  sessionChannelRule,
  type ChannelResolver,
  type GetUser,
  type SessionChannelOptions,
  type SessionData,
} from './resolvers.js';

export interface SessionCookieOptions extends SessionChannelOptions {
  /** express-session's `secret`(s): the first signs, all verify (rotation). At least one. */
  secrets: readonly string[];
  /** The store client, or a function returning it (looked up on each use). */
  store: SessionKeyReader | (() => SessionKeyReader);
  /** Name of the session cookie. Defaults to `connect.sid` (express-session's default). */
  cookieName?: string;
  /** Key prefix of the sessions. Defaults to `sess:` (connect-redis's default). */
  prefix?: string;
  /** Finds the username. Defaults to session.user.username, session.username, then session.passport.user. */
  getUser?: GetUser;
  /** How often open streams re-validate their session, in ms; 0 turns it off. Defaults to 60000. */
  recheck?: number;
  /** Longest wait for the store on a new connection, in ms. Defaults to 2000. */
  lookupTimeout?: number;
  /** Defaults to silent. */
  logger?: Logger;
}

/** A ChannelResolver for the session cookie, with the re-check timer it owns. */
export interface SessionCookieResolver extends ChannelResolver {
  /** Re-validates every watched session now (the timer calls this). */
  recheck(): Promise<void>;
  /** Open streams currently watched. */
  readonly watching: number;
  /** Stops the re-check timer. Streams stay open. */
  close(): void;
}

/** Keys per MGET during a re-check: bounds one command's size and latency. */
const RECHECK_BATCH = 200;

interface Watched {
  user: string;
  connections: Set<Connection>;
}

export function fromSessionCookie(options: SessionCookieOptions): SessionCookieResolver {
  const secrets = validateSecrets(options.secrets);
  const cookieName = options.cookieName ?? 'connect.sid';
  const prefix = options.prefix ?? 'sess:';
  const getUser = options.getUser ?? defaultGetUser;
  const recheckEvery = options.recheck ?? 60_000;
  const lookupTimeout = options.lookupTimeout ?? 2000;
  const logger = options.logger ?? silentLogger;
  const getStore = typeof options.store === 'function' ? options.store : () => options.store as SessionKeyReader;
  if (cookieName === '') throw new OptionError('cookieName must be a non-empty cookie name');
  if (!Number.isFinite(recheckEvery) || recheckEvery < 0) {
    throw new OptionError(`recheck must be a number of ms >= 0 (0: off), got ${String(recheckEvery)}`);
  }
  if (!Number.isFinite(lookupTimeout) || lookupTimeout <= 0) {
    throw new OptionError(`lookupTimeout must be a positive number of ms, got ${String(lookupTimeout)}`);
  }
  const extras = sessionChannelRule(options);

  // Who is listening, by session id: one timer re-checks them all in batches,
  // so an open stream costs nothing per event or per heartbeat.
  const sidOf = new WeakMap<IncomingMessage, { sid: string; user: string }>();
  const watched = new Map<string, Watched>();
  let timer: NodeJS.Timeout | undefined;
  let checking = false;

  const resolve = (async (req: IncomingMessage) => {
    const sid = sessionIdOf(req, cookieName, secrets);
    const [raw] = await readKeys(getStore(), [prefix + sid], lookupTimeout);
    const session = parseSession(raw);
    if (session === undefined) {
      throw new HttpError(403, 'the session has expired or was logged out: log in again', 'SSE_ERR_ANONYMOUS');
    }
    const user = await getUser(session, req);
    const channels = await extras(req, user);
    sidOf.set(req, { sid, user: user as string });
    return channels;
  }) as unknown as SessionCookieResolver;

  resolve.userOf = (req) => sidOf.get(req)?.user;

  resolve.attached = (req, connection) => {
    const entry = sidOf.get(req);
    if (entry === undefined || recheckEvery === 0) return;
    let w = watched.get(entry.sid);
    if (w === undefined) {
      w = { user: entry.user, connections: new Set() };
      watched.set(entry.sid, w);
    }
    w.connections.add(connection);
    connection.res.once('close', () => {
      const current = watched.get(entry.sid);
      if (current === undefined) return;
      current.connections.delete(connection);
      if (current.connections.size === 0) watched.delete(entry.sid);
    });
    if (timer === undefined) {
      timer = setInterval(() => void resolve.recheck(), recheckEvery);
      timer.unref();
    }
  };

  resolve.recheck = async () => {
    if (checking || watched.size === 0) return;
    checking = true;
    try {
      const sids = [...watched.keys()];
      for (let i = 0; i < sids.length; i += RECHECK_BATCH) {
        const batch = sids.slice(i, i + RECHECK_BATCH);
        let values: readonly unknown[];
        try {
          values = await readKeys(
            getStore(),
            batch.map((sid) => prefix + sid),
            lookupTimeout,
          );
        } catch (err) {
          // Store down: open streams stay open (fail open for what was already
          // verified); new connections are refused meanwhile (fail closed).
          logger.debug('session re-check skipped: the store did not answer', { error: String(err) });
          return;
        }
        for (const [j, sid] of batch.entries()) {
          const w = watched.get(sid);
          if (w === undefined) continue;
          const session = parseSession(values[j]);
          const first = w.connections.values().next().value as Connection | undefined;
          const user = session === undefined || first === undefined ? undefined : await getUser(session, first.req);
          if (user === w.user) continue;
          logger.info('ending the SSE streams of a session that was logged out or expired', {
            user: w.user,
            streams: w.connections.size,
          });
          watched.delete(sid);
          for (const connection of w.connections) connection.end('server');
        }
      }
    } finally {
      checking = false;
    }
  };

  Object.defineProperty(resolve, 'watching', {
    get: () => [...watched.values()].reduce((n, w) => n + w.connections.size, 0),
  });

  resolve.close = () => {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
    watched.clear();
  };

  return resolve;
}

/**
 * The session id of a request, as express-session reads it: the cookie's value
 * is `s:<sid>.<signature>`; any secret of the rotation list may verify it. A
 * cookie without the `s:` prefix is unsigned and refused.
 */
export function sessionIdOf(req: IncomingMessage, cookieName: string, secrets: readonly string[]): string {
  const header = req.headers.cookie;
  const value = header === undefined ? undefined : parseCookie(header)[cookieName];
  if (value === undefined || value === '') {
    throw new HttpError(
      403,
      `no session cookie "${cookieName}": log in to the web app first (same site, cookies sent with the request)`,
      'SSE_ERR_ANONYMOUS',
    );
  }
  if (value.startsWith('s:')) {
    for (const secret of secrets) {
      const sid = unsign(value.slice(2), secret);
      if (sid !== false && sid !== '') return sid;
    }
  }
  throw new HttpError(
    403,
    `the session cookie "${cookieName}" has a bad signature: it was not signed with any configured session secret`,
    'SSE_ERR_FORBIDDEN',
  );
}

/** The session, or undefined when missing, unreadable, or past its cookie's expiry. */
export function parseSession(raw: unknown, now = Date.now()): SessionData | undefined {
  const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : raw;
  if (typeof text !== 'string') return undefined;
  let session: unknown;
  try {
    session = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof session !== 'object' || session === null || Array.isArray(session)) return undefined;
  // connect-redis sets the key's TTL from the cookie; this also covers stores
  // (or a clock skew) where an expired session is still readable.
  const cookie = (session as SessionData).cookie;
  const expires = typeof cookie === 'object' && cookie !== null ? (cookie as SessionData).expires : undefined;
  // No expiry (undefined, or null for a browser-session cookie) never expires.
  // Anything else must be a date in the future: a value that is not a date
  // (a number, garbage) counts as expired — fail closed (CWE-613).
  if (expires !== undefined && expires !== null) {
    const at = typeof expires === 'string' ? Date.parse(expires) : NaN;
    if (!(at > now)) return undefined;
  }
  return session as SessionData;
}

async function readKeys(store: SessionKeyReader, keys: string[], timeoutMs: number): Promise<readonly unknown[]> {
  if (!store.isReady) {
    throw new SessionStoreUnavailableError('the session store (redis) is not reachable; cannot check the login');
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new SessionStoreUnavailableError(`the session store (redis) did not answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([store.mGet(keys), timeout]);
  } catch (err) {
    if (err instanceof SessionStoreUnavailableError) throw err;
    throw new SessionStoreUnavailableError(`the session store (redis) failed: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    clearTimeout(timer);
  }
}

function validateSecrets(secrets: unknown): string[] {
  if (!Array.isArray(secrets) || secrets.length === 0 || !secrets.every((s) => typeof s === 'string' && s !== '')) {
    throw new OptionError("secrets must be a non-empty list of the web app's express-session secrets");
  }
  return [...(secrets as string[])];
}
