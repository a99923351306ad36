// Token mode (docs/tokens.md): a signed JWT says which channels its holder may
// listen on (and, optionally, publish to), so any backend — Django, Rails, Go —
// can authorize streams without sharing a session store. Invariants: a token
// is verified (signature, algorithm, `exp`) before any claim is read; the
// query may narrow what the token grants, never widen it; an open stream
// ends at `exp`. This is the only file that imports `jose`.
import { createPublicKey, KeyObject, X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { parseCookie } from 'cookie';
import { decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { assertChannelName, isChannelName, MAX_CHANNEL_LENGTH } from '../core/channel.js';
import type { Connection } from '../core/connection.js';
import { ChannelNameError, HttpError, OptionError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { queryOf, type ChannelResolver } from './resolvers.js';

/** The keys tokens may be signed with. At least one secret or public key. */
export interface TokenKeyOptions {
  /**
   * HMAC secrets (HS256, HS384, HS512), each at least 32 bytes (RFC 7518
   * §3.2). More than one: tokens signed with any of them are accepted (rotation).
   */
  secrets?: readonly (string | Uint8Array)[];
  /**
   * Public keys as PEM text (`PUBLIC KEY`, `RSA PUBLIC KEY` or `CERTIFICATE`
   * blocks; one text may hold several) or KeyObjects. RSA keys accept RS256-RS512 and PS256-PS512,
   * EC keys ES256/ES384/ES512 by curve, Ed25519/Ed448 keys EdDSA.
   */
  publicKeys?: readonly (string | KeyObject)[];
  /** Seconds of clock skew tolerated on `exp` and `nbf`. Defaults to 0. */
  clockTolerance?: number;
}

export interface TokenOptions extends TokenKeyOptions {
  /** Cookie holding the token. Defaults to `sse_token`. */
  cookieName?: string;
  /**
   * Query parameter holding the token, for EventSource, which cannot set
   * headers; `false` turns it off. URLs end up in access logs: prefer the
   * cookie. Defaults to `token`.
   */
  queryParam?: string | false;
  /** Query parameter naming the channels to listen on (a subset of the grant). Defaults to `channels`. */
  param?: string;
  /** Defaults to silent. */
  logger?: Logger;
}

/**
 * What a token grants on channels: exact names, and prefix patterns written
 * `team-*` (a `*` can never be part of a channel name, so `team-*` is always
 * a pattern). `*` alone grants every channel.
 */
export interface ChannelGrant {
  readonly channels: ReadonlySet<string>;
  /** Prefixes of the patterns (`team-*` → `team-`); `''` is `*`. */
  readonly prefixes: readonly string[];
}

/** The verified claims sse-hub uses. */
export interface TokenClaims {
  /** The holder, when the token names one (`sub`). */
  sub?: string;
  /** Expiry, in seconds since the epoch (`exp`, required). */
  exp: number;
  /** Channels the holder may listen on (`channels`); empty when the claim is absent. */
  channels: ChannelGrant;
  /** Channels the holder may POST /publish to (`publish`); undefined when the claim is absent. */
  publish?: ChannelGrant;
}

/** Verifies tokens against the configured keys; shared by the stream and POST /publish. */
export interface TokenVerifier {
  /** The claims of a valid token; throws HttpError 403 (code SSE_ERR_TOKEN) for anything else. */
  verify(token: string): Promise<TokenClaims>;
  /** Algorithms some configured key accepts. */
  readonly algorithms: readonly string[];
}

/** Counters of token mode, for /metrics. */
export interface TokenCounters {
  /** Requests refused because their token was missing a signature, malformed, expired or signed with another key. */
  refused: number;
  /** Open streams ended because their token expired. */
  expired: number;
}

/** A ChannelResolver for token mode, with its counters. */
export interface TokenResolver extends ChannelResolver {
  readonly verifier: TokenVerifier;
  readonly counters: TokenCounters;
  /** The verified claims of a request this resolver accepted (for logs and presence). */
  claimsOf(req: IncomingMessage): TokenClaims | undefined;
}

export const DEFAULT_TOKEN_COOKIE = 'sse_token';
export const DEFAULT_TOKEN_QUERY = 'token';

/** Longest delay setTimeout takes; a later `exp` re-arms the timer. */
const MAX_TIMER = 2 ** 31 - 1;
const MIN_SECRET_BYTES = 32;

interface Key {
  key: KeyObject | Uint8Array;
  algorithms: readonly string[];
}

const HMAC = ['HS256', 'HS384', 'HS512'];
const RSA = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const EC_CURVES: Readonly<Record<string, string>> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };

export function createTokenVerifier(options: TokenKeyOptions): TokenVerifier {
  const keys = [
    ...(options.secrets ?? []).map(secretKey),
    ...(options.publicKeys ?? []).flatMap((k) => (typeof k === 'string' ? parsePublicKeys(k) : [k])).map(publicKey),
  ];
  if (keys.length === 0) {
    throw new OptionError('token mode needs at least one key: a secret (HS256) or a public key (RS256, ES256, EdDSA)');
  }
  const clockTolerance = options.clockTolerance ?? 0;
  if (!Number.isFinite(clockTolerance) || clockTolerance < 0) {
    throw new OptionError(`clockTolerance must be a number of seconds >= 0, got ${String(clockTolerance)}`);
  }
  const algorithms = [...new Set(keys.flatMap((k) => k.algorithms))];

  return {
    algorithms,
    async verify(token) {
      let alg: unknown;
      try {
        alg = decodeProtectedHeader(token).alg;
      } catch {
        throw tokenError('the token is not a JWT (header.payload.signature)');
      }
      // jose refuses `none` too; saying so here gives the clearer message.
      if (typeof alg !== 'string' || alg.toLowerCase() === 'none') {
        throw tokenError('unsigned tokens (alg "none") are refused');
      }
      const candidates = keys.filter((k) => k.algorithms.includes(alg));
      if (candidates.length === 0) {
        throw tokenError(
          `tokens signed with ${JSON.stringify(alg.slice(0, 16))} are not accepted here; the configured keys take ${algorithms.join(', ')}`,
        );
      }
      // Rotation: try each key of this algorithm. A claim failure (expired)
      // comes after the signature matched, so no other key can change it.
      for (const { key } of candidates) {
        let payload: JWTPayload;
        try {
          ({ payload } = await jwtVerify(token, key, { algorithms: [alg], requiredClaims: ['exp'], clockTolerance }));
        } catch (err) {
          if (err instanceof joseErrors.JWTExpired) throw tokenError('the token has expired: get a fresh one');
          if (err instanceof joseErrors.JWTClaimValidationFailed) throw tokenError(`bad token: ${err.message}`);
          if (err instanceof joseErrors.JWSSignatureVerificationFailed) continue;
          throw tokenError('the token is malformed');
        }
        return claimsOf(payload);
      }
      throw tokenError('the token signature does not match any configured key');
    },
  };
}

/**
 * Where a request's token is: `Authorization: Bearer`, then `?token=`, then
 * the cookie — the most explicit wins, so a page can replace a stale cookie
 * with a fresh token in the URL.
 */
export function tokenOf(
  req: IncomingMessage,
  cookieName: string = DEFAULT_TOKEN_COOKIE,
  queryParam: string | false = DEFAULT_TOKEN_QUERY,
): string | undefined {
  const header = req.headers.authorization;
  if (header !== undefined && /^bearer /i.test(header)) {
    const value = header.slice(7).trim();
    if (value !== '') return value;
  }
  if (queryParam !== false) {
    const value = queryOf(req).get(queryParam);
    if (value !== null && value !== '') return value;
  }
  const cookies = req.headers.cookie;
  const value = cookies === undefined ? undefined : parseCookie(cookies)[cookieName];
  return value === undefined || value === '' ? undefined : value;
}

/** True when `channel` is named in the grant or matches one of its patterns. */
export function grants(grant: ChannelGrant, channel: string): boolean {
  return grant.channels.has(channel) || grant.prefixes.some((p) => channel.length > p.length && channel.startsWith(p));
}

/** Parses a `channels`/`publish` claim; throws 403 SSE_ERR_TOKEN when it is not a list of names and `prefix-*` patterns. */
export function parseGrant(value: unknown, claim: string): ChannelGrant {
  if (!Array.isArray(value)) throw tokenError(`the "${claim}" claim must be a list of channel names`);
  const channels = new Set<string>();
  const prefixes: string[] = [];
  for (const entry of value) {
    if (isChannelName(entry)) channels.add(entry);
    else if (isPattern(entry)) prefixes.push(entry.slice(0, -1));
    else {
      const shown = JSON.stringify(entry)?.slice(0, 40) ?? String(entry);
      throw tokenError(
        `the "${claim}" claim holds ${shown}, which is neither a channel name nor a pattern such as "team-*"`,
      );
    }
  }
  return { channels, prefixes };
}

function isPattern(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.endsWith('*') &&
    value.length <= MAX_CHANNEL_LENGTH &&
    (value.length === 1 || isChannelName(value.slice(0, -1)))
  );
}

function claimsOf(payload: JWTPayload): TokenClaims {
  if (payload.sub !== undefined && typeof payload.sub !== 'string')
    throw tokenError('the "sub" claim must be a string');
  return {
    sub: payload.sub,
    exp: payload.exp as number, // required and type-checked by jwtVerify
    channels:
      payload.channels === undefined ? { channels: new Set(), prefixes: [] } : parseGrant(payload.channels, 'channels'),
    publish: payload.publish === undefined ? undefined : parseGrant(payload.publish, 'publish'),
  };
}

/**
 * Channels a stream listens on: the ones named in the query, each of which the
 * token must grant (else 403, as in session mode), or — with no query — every
 * channel the token names exactly.
 */
function channelsFor(claims: TokenClaims, asked: readonly string[]): string[] {
  // A Set: each named channel is matched against the grant once, however often it is repeated.
  const named = [
    ...new Set(
      asked
        .flatMap((v) => v.split(','))
        .map((v) => v.trim())
        .filter((v) => v !== ''),
    ),
  ];
  if (named.length === 0) {
    if (claims.channels.channels.size === 0) {
      throw new ChannelNameError(
        'the token grants channel patterns only: name the channels to listen on, e.g. ?channels=team-1',
        'SSE_ERR_NO_CHANNELS',
      );
    }
    return [...claims.channels.channels];
  }
  for (const channel of named) {
    assertChannelName(channel);
    if (!grants(claims.channels, channel)) {
      throw new HttpError(
        403,
        `not allowed to listen on channel "${channel}": the token does not grant it`,
        'SSE_ERR_FORBIDDEN',
      );
    }
  }
  return named;
}

/**
 * `sseMiddleware({ channels: fromToken({ secrets: [...] }) })` and
 * `sse-runserver --channels token`. A request without a token is anonymous
 * (403, code SSE_ERR_ANONYMOUS, so `allowAnonymous` applies); a bad one is
 * refused with 403, code SSE_ERR_TOKEN.
 */
export function fromToken(options: TokenOptions): TokenResolver {
  const verifier = createTokenVerifier(options);
  const cookieName = options.cookieName ?? DEFAULT_TOKEN_COOKIE;
  const queryParam = options.queryParam ?? DEFAULT_TOKEN_QUERY;
  const param = options.param ?? 'channels';
  const logger = options.logger ?? silentLogger;
  if (cookieName === '') throw new OptionError('cookieName must be a non-empty cookie name');
  if (queryParam === '') throw new OptionError('queryParam must be a parameter name or false');
  const counters: TokenCounters = { refused: 0, expired: 0 };
  const accepted = new WeakMap<IncomingMessage, TokenClaims>();

  const resolve = (async (req: IncomingMessage) => {
    const token = tokenOf(req, cookieName, queryParam);
    if (token === undefined) {
      const where = queryParam === false ? '' : ` or ?${queryParam}=`;
      throw new HttpError(
        403,
        `no token: send it in the "${cookieName}" cookie, an Authorization: Bearer header${where}`,
        'SSE_ERR_ANONYMOUS',
      );
    }
    let claims: TokenClaims;
    try {
      claims = await verifier.verify(token);
    } catch (err) {
      counters.refused += 1;
      throw err;
    }
    const channels = channelsFor(claims, queryOf(req).getAll(param));
    accepted.set(req, claims);
    return channels;
  }) as unknown as TokenResolver & { counters: TokenCounters; verifier: TokenVerifier };

  resolve.attached = (req, connection) => {
    const claims = accepted.get(req);
    if (claims === undefined) return;
    logger.debug('token stream opened', { sub: claims.sub, channels: connection.channels });
    endAtExpiry(connection, claims, () => {
      counters.expired += 1;
      logger.info('ending an SSE stream: its token expired', { sub: claims.sub });
    });
  };
  resolve.claimsOf = (req) => accepted.get(req);
  // Presence names a token's holder by its `sub` (docs/operations.md "Presence").
  resolve.userOf = (req) => accepted.get(req)?.sub;
  Object.assign(resolve, { verifier, counters });
  return resolve;
}

/** Ends `connection` cleanly at the token's `exp` (the browser reconnects and needs a fresh token). */
function endAtExpiry(connection: Connection, claims: TokenClaims, onExpire: () => void): void {
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const left = claims.exp * 1000 - Date.now();
    if (left <= 0) {
      onExpire();
      connection.end('server');
      return;
    }
    timer = setTimeout(arm, Math.min(left, MAX_TIMER));
    timer.unref();
  };
  arm();
  connection.res.once('close', () => clearTimeout(timer));
}

function secretKey(secret: string | Uint8Array): Key {
  const key = typeof secret === 'string' ? new TextEncoder().encode(secret) : secret;
  if (key.length < MIN_SECRET_BYTES) {
    throw new OptionError(
      `a token secret must be at least ${MIN_SECRET_BYTES} bytes (RFC 7518 §3.2: as long as the HS256 hash), got ${key.length}`,
    );
  }
  return { key, algorithms: HMAC };
}

function publicKey(key: KeyObject): Key {
  if (key.type !== 'public') {
    throw new OptionError('a token public key must be a public key, not a private or secret one');
  }
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return { key, algorithms: RSA };
    case 'rsa-pss':
      return { key, algorithms: RSA.filter((a) => a.startsWith('PS')) };
    case 'ec': {
      const alg = EC_CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''];
      if (alg === undefined) {
        throw new OptionError(
          `EC token keys must be on P-256, P-384 or P-521, got ${key.asymmetricKeyDetails?.namedCurve}`,
        );
      }
      return { key, algorithms: [alg] };
    }
    case 'ed25519':
    case 'ed448':
      return { key, algorithms: ['EdDSA'] };
    default:
      throw new OptionError(`token keys must be RSA, EC or Ed25519/Ed448, got ${String(key.asymmetricKeyType)}`);
  }
}

/** Every public key in a PEM text: `PUBLIC KEY`, `RSA PUBLIC KEY` and `CERTIFICATE` blocks. */
export function parsePublicKeys(pem: string): KeyObject[] {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw new OptionError('the token key holds a PRIVATE KEY: give sse-hub the public key only (openssl pkey -pubout)');
  }
  const blocks = pem.match(/-----BEGIN ((?:RSA )?PUBLIC KEY|CERTIFICATE)-----[\s\S]+?-----END \1-----/g) ?? [];
  if (blocks.length === 0) {
    throw new OptionError('no PEM public key found: expected -----BEGIN PUBLIC KEY----- (or CERTIFICATE)');
  }
  return blocks.map((block) => {
    try {
      return block.includes('CERTIFICATE') ? new X509Certificate(block).publicKey : createPublicKey(block);
    } catch (err) {
      throw new OptionError(`unreadable PEM public key: ${(err as Error).message}`);
    }
  });
}

function tokenError(message: string): HttpError {
  return new HttpError(403, message, 'SSE_ERR_TOKEN');
}

/** True for the resolver fromToken() returns (the server then also takes its tokens on POST /publish). */
export function isTokenResolver(resolver: ChannelResolver | undefined): resolver is TokenResolver {
  return resolver !== undefined && 'verifier' in resolver && 'counters' in resolver;
}
