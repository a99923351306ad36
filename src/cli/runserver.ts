// sse-runserver: the standalone SSE server (docs/protocol.md#sse-runserver), tornado_sse's and
// `manage.py runsseserver`'s analogue. Exit codes: 0 after a clean SIGINT/
// SIGTERM, 1 when it cannot start, 2 for bad flags (one line on stderr).
import { readFileSync, statSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { hasSessionKeys } from '../core/broker.js';
import { SseHubTypeError } from '../core/errors.js';
import type { Hub } from '../core/hub.js';
import type { Logger } from '../core/logger.js';
import { redactUrls } from '../core/redact.js';
import { getUserAt, userChannelPrefix } from '../http/resolvers.js';
import { normalizeOrigin } from '../http/cors.js';
import { fromSessionCookie, type SessionCookieResolver } from '../http/session-cookie.js';
import { fromToken, parsePublicKeys, type TokenResolver } from '../http/token.js';
import { trustProxy } from '../http/trust-proxy.js';
import {
  clusterHealthSource,
  clusterMetricsSource,
  isWorker,
  reportListening,
  resolveWorkers,
  runPrimary,
} from './cluster.js';
import { addFlags, RUNSERVER_FLAGS } from './flags.js';
import { doctor, probeUrlFor } from './doctor.js';
import { consoleLogger } from './logger.js';
import { redisTarget, type RedisTarget, type RedisTargetFlags } from './redis-target.js';
import { createServer, type SseServer } from './server.js';

interface RunserverFlags extends RedisTargetFlags {
  address: string;
  port: number;
  path: string;
  redisWaitReplicas?: number;
  channelPrefix: string;
  channels: 'query' | 'session' | 'token';
  tokenSecret?: string[];
  tokenPublicKey?: string[];
  tokenCookie: string;
  corsOrigin?: string[];
  publishToken?: string;
  adminToken?: string;
  admin: boolean;
  presenceChannels?: string[];
  presenceDebounce: number;
  presenceTtl: number;
  static?: string;
  sessionSecret?: string[];
  sessionSecretFile?: string;
  userChannelPrefix: string;
  sessionCookie: string;
  sessionPrefix: string;
  sessionUserPath?: string;
  sessionRecheck: number;
  sessionLookupTimeout: number;
  publicChannels?: string[];
  heartbeat: number;
  heartbeatEvent: boolean;
  doctor?: string;
  retry: number;
  maxChannels: number;
  maxBufferedBytes: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  maxPublishBytes: number;
  trustProxy?: string[];
  headersTimeout: number;
  requestTimeout: number;
  backlog: number;
  history?: number;
  maxReplays: number;
  replayStallTimeout: number;
  historyCacheBytes: number;
  drainTime: number;
  workers?: number;
  metrics: boolean;
  debug: boolean;
}

/** How long SIGTERM may take after the drain time before the process exits anyway, in ms. */
const SHUTDOWN_GRACE = 4000;

function buildCommand(): Command {
  const command = new Command('sse-runserver')
    .description('Multichannel Server-Sent Events server: GET /?channels=a,b streams, POST /publish, GET /healthz')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ writeErr: () => undefined });
  return addFlags(command, RUNSERVER_FLAGS);
}

export async function main(argv: string[]): Promise<void> {
  const command = buildCommand();
  try {
    command.parse(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) process.exit(0); // --help, --version
      fail(err.message.replace(/^error: /, ''), 2);
    }
    throw err;
  }
  const flags = command.opts<RunserverFlags>();
  if (flags.doctor !== undefined) return runDoctor(flags.doctor);
  const target = redisTarget(flags);
  if (typeof target === 'string') fail(target, 2);
  if (flags.redisWaitReplicas !== undefined && (flags.history === undefined || target === undefined)) {
    fail('--redis-wait-replicas needs --history and a Redis: it makes kept events survive a failover', 2);
  }
  if (flags.static !== undefined && !isDirectory(flags.static)) fail(`--static ${flags.static} is not a folder`, 2);
  const logger = consoleLogger(flags.debug);
  let sse: SseServer | undefined;
  // Checked before any worker starts, so a bad session flag exits 2 here.
  // The session store is read through the broker's session-keys capability
  // (the redis broker's own connections): no second connection.
  const session = sessionMode(flags, target, logger, () => sse?.hub);
  const token = tokenMode(flags, logger);
  const corsOrigins = corsOriginsOf(flags.corsOrigin);
  const proxies = trustedProxiesOf(flags.trustProxy);
  const workers = resolveWorkers(flags.workers, target !== undefined);
  if (typeof workers === 'string') fail(workers, 2);
  if (workers > 1 && !isWorker()) return runPrimary(workers, logger, fail, flags.drainTime);
  try {
    sse = createServer({
      channels: session ?? token,
      corsOrigins,
      path: flags.path,
      publishToken: flags.publishToken,
      adminToken: flags.adminToken,
      admin: flags.admin,
      staticDir: flags.static,
      maxPublishBytes: flags.maxPublishBytes,
      trustProxy: proxies,
      headersTimeout: flags.headersTimeout,
      requestTimeout: flags.requestTimeout,
      backlog: flags.backlog,
      logger,
      metrics: flags.metrics && (isWorker() ? clusterMetricsSource : true),
      health: isWorker() ? clusterHealthSource : undefined,
      hubOptions: {
        broker: target ? 'redis' : 'memory',
        redisUrl: target?.redisUrl,
        redisSentinel: target?.redisSentinel,
        redisCluster: target?.redisCluster,
        pubsub: flags.pubsub,
        redisWaitReplicas: flags.redisWaitReplicas,
        channelPrefix: flags.channelPrefix,
        heartbeat: flags.heartbeat,
        heartbeatEvent: flags.heartbeatEvent,
        retry: flags.retry,
        maxChannels: flags.maxChannels,
        maxBufferedBytes: flags.maxBufferedBytes,
        maxConnections: flags.maxConnections,
        maxConnectionsPerIp: flags.maxConnectionsPerIp,
        history: flags.history === undefined ? false : { size: flags.history },
        presenceChannels: flags.presenceChannels,
        presenceDebounce: flags.presenceDebounce,
        presenceTtl: flags.presenceTtl,
        maxReplays: flags.maxReplays,
        replayStallTimeout: flags.replayStallTimeout,
        historyCacheBytes: flags.historyCacheBytes,
        drainTime: flags.drainTime,
      },
    });
  } catch (err) {
    if (err instanceof SseHubTypeError) fail(err.message, 2); // bad input: an option, a channel, ...
    throw err;
  }
  const address = await sse
    .listen(flags.port, flags.address)
    .catch((err: Error) => fail(`cannot listen: ${err.message}`, 1));
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}${flags.path}`;
  if (isWorker()) reportListening(url, sse.hub.broker.name);
  else logger.info(`listening on ${url} (broker: ${sse.hub.broker.name})`);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    const drain = flags.drainTime > 0 ? ` over ${flags.drainTime} ms` : '';
    logger.info(`${signal}: ending streams${drain} and closing the broker`);
    session?.close();
    const grace = flags.drainTime + SHUTDOWN_GRACE;
    setTimeout(() => {
      logger.warn(`still closing after ${grace} ms; exiting anyway`);
      process.exit(0);
    }, grace).unref();
    sse.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error(`error while closing: ${String(err)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** `--channels session`: the cookie resolver over the redis broker's client, or undefined in query mode. */
function sessionMode(
  flags: RunserverFlags,
  target: RedisTarget | undefined,
  logger: Logger,
  hub: () => Hub | undefined,
): SessionCookieResolver | undefined {
  const sessionOnly = ['sessionSecret', 'sessionSecretFile', 'sessionUserPath', 'publicChannels'] as const;
  if (flags.channels !== 'session') {
    const given = sessionOnly.find((key) => flags[key] !== undefined && process.env[envOf(key)] === undefined);
    if (given !== undefined) fail(`--${kebab(given)} needs --channels session`, 2);
    if (flags.userChannelPrefix !== '' && process.env.SSE_USER_CHANNEL_PREFIX === undefined) {
      fail('--user-channel-prefix needs --channels session', 2);
    }
    return undefined;
  }
  if (target === undefined) {
    fail(
      '--channels session needs --redis URL (or --redis-sentinel / --redis-cluster): the Redis that connect-redis stores the sessions in',
      2,
    );
  }
  const secrets = sessionSecrets(flags, process.env);
  if (typeof secrets === 'string') fail(secrets, 2);
  if (secrets.length === 0) {
    fail(
      "--channels session needs --session-secret (or SSE_SESSION_SECRETS, --session-secret-file): the web app's express-session secret",
      2,
    );
  }
  flags.sessionSecret = secrets;
  const path = flags.sessionUserPath;
  if (path !== undefined && !/^[^.]+(\.[^.]+)*$/.test(path)) {
    fail(`--session-user-path must be a dotted path such as user.name, got "${path}"`, 2);
  }
  try {
    return createSessionResolver(flags, path, logger, hub);
  } catch (err) {
    if (err instanceof SseHubTypeError) fail(err.message, 2); // bad input: an option, a channel, ...
    throw err;
  }
}

function createSessionResolver(
  flags: RunserverFlags,
  path: string | undefined,
  logger: Logger,
  hub: () => Hub | undefined,
): SessionCookieResolver {
  return fromSessionCookie({
    secrets: flags.sessionSecret ?? [],
    cookieName: flags.sessionCookie,
    prefix: flags.sessionPrefix,
    getUser: path === undefined ? undefined : getUserAt(path),
    publicChannels: flags.publicChannels,
    userChannel: flags.userChannelPrefix === '' ? undefined : userChannelPrefix(flags.userChannelPrefix),
    recheck: flags.sessionRecheck * 1000,
    lookupTimeout: flags.sessionLookupTimeout,
    logger,
    store: () => {
      const broker = hub()?.broker;
      if (broker === undefined || !hasSessionKeys(broker)) throw new Error('session mode needs the redis broker');
      return broker.sessionKeys;
    },
  });
}

/**
 * Every secret, verbatim, from `--session-secret` (comma list), `--session-secret-file`
 * (one per line) and `SSE_SESSION_SECRETS` (a JSON array); or the one-line
 * reason to refuse them. Secrets are never altered: a comma-list item the
 * list syntax would change (spaces around it, empty) is refused, not trimmed,
 * and no message repeats a secret.
 */
export function sessionSecrets(
  flags: Pick<RunserverFlags, 'sessionSecret' | 'sessionSecretFile'>,
  env: NodeJS.ProcessEnv,
): string[] | string {
  const secrets = commaListSecrets(
    flags.sessionSecret,
    '--session-secret (or SSE_SESSION_SECRET)',
    'SSE_SESSION_SECRETS (a JSON array of strings) or --session-secret-file (one secret per line)',
  );
  if (typeof secrets === 'string') return secrets;
  if (flags.sessionSecretFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(flags.sessionSecretFile, 'utf8');
    } catch (err) {
      return `--session-secret-file ${flags.sessionSecretFile} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
    }
    const lines = text.split(/\r?\n/);
    if (lines[lines.length - 1] === '') lines.pop(); // the file's final newline
    if (lines.length === 0 || lines.some((line) => line === '')) {
      return `--session-secret-file ${flags.sessionSecretFile} must hold one non-empty secret per line`;
    }
    secrets.push(...lines);
  }
  const json = jsonSecrets(env, 'SSE_SESSION_SECRETS');
  if (typeof json === 'string') return json;
  return [...secrets, ...json];
}

/**
 * The token secrets, verbatim, from `--token-secret` (comma list) and
 * `SSE_TOKEN_SECRETS` (a JSON array), by the same rule as sessionSecrets().
 */
export function tokenSecrets(flags: Pick<RunserverFlags, 'tokenSecret'>, env: NodeJS.ProcessEnv): string[] | string {
  const secrets = commaListSecrets(
    flags.tokenSecret,
    '--token-secret (or SSE_TOKEN_SECRET)',
    'SSE_TOKEN_SECRETS (a JSON array of strings)',
  );
  if (typeof secrets === 'string') return secrets;
  const json = jsonSecrets(env, 'SSE_TOKEN_SECRETS');
  return typeof json === 'string' ? json : [...secrets, ...json];
}

/** Splits raw comma lists; refuses (a message that never repeats a secret) an item the split would alter. */
function commaListSecrets(raws: readonly string[] | undefined, what: string, instead: string): string[] | string {
  const secrets: string[] = [];
  for (const raw of raws ?? []) {
    for (const item of raw.split(',')) {
      if (item === '' || item !== item.trim()) {
        return `${what} has an empty item or one with spaces around it, which the comma-list syntax would alter: pass such a secret verbatim in ${instead}`;
      }
      secrets.push(item);
    }
  }
  return secrets;
}

/** A JSON array of non-empty strings in `env[name]`, or the message refusing it; none when unset. */
function jsonSecrets(env: NodeJS.ProcessEnv, name: string): string[] | string {
  const json = env[name];
  if (json === undefined || json === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((s) => typeof s === 'string' && s !== '')) {
    return `${name} must be a JSON array of non-empty strings, e.g. ["new secret", "old, secret"]`;
  }
  return parsed as string[];
}

const kebab = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const envOf = (key: string): string => `SSE_${kebab(key).replace(/-/g, '_').toUpperCase()}`;

/** `--channels token`: the token resolver over the configured keys, or undefined in other modes. */
function tokenMode(flags: RunserverFlags, logger: Logger): TokenResolver | undefined {
  const tokenOnly = ['tokenSecret', 'tokenPublicKey'] as const;
  if (flags.channels !== 'token') {
    const given = tokenOnly.find((key) => flags[key] !== undefined && process.env[envOf(key)] === undefined);
    if (given !== undefined) fail(`--${kebab(given)} needs --channels token`, 2);
    return undefined;
  }
  const secrets = tokenSecrets(flags, process.env);
  if (typeof secrets === 'string') fail(secrets, 2);
  if (secrets.length === 0 && !flags.tokenPublicKey?.length) {
    fail('--channels token needs --token-secret (HS256) or --token-public-key FILE (RS256, ES256, EdDSA)', 2);
  }
  try {
    const publicKeys = (flags.tokenPublicKey ?? []).flatMap((file) => {
      let pem: string;
      try {
        pem = readFileSync(file, 'utf8');
      } catch (err) {
        return fail(`--token-public-key ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, 2);
      }
      try {
        return parsePublicKeys(pem);
      } catch (err) {
        if (err instanceof SseHubTypeError) fail(`--token-public-key ${file}: ${err.message}`, 2);
        throw err;
      }
    });
    return fromToken({ secrets, publicKeys, cookieName: flags.tokenCookie, logger });
  } catch (err) {
    if (err instanceof SseHubTypeError) fail(err.message, 2);
    throw err;
  }
}

function corsOriginsOf(values: string[] | undefined): string[] {
  try {
    return (values ?? []).map((value) => normalizeOrigin(value));
  } catch (err) {
    if (err instanceof SseHubTypeError) fail(`--cors-origin: ${err.message}`, 2);
    throw err;
  }
}

/** `--trust-proxy`, checked here so that a bad address exits 2 before any worker starts; empty: none. */
function trustedProxiesOf(values: string[] | undefined): string[] | undefined {
  if (values === undefined || values.length === 0) return undefined;
  try {
    trustProxy(values);
  } catch (err) {
    if (err instanceof SseHubTypeError) fail(err.message.replace(/^trustProxy/, '--trust-proxy'), 2);
    throw err;
  }
  return values;
}

/** `--doctor URL`: one line on stdout; exit 0 clean, 1 problem found, 2 bad URL. */
async function runDoctor(url: string): Promise<void> {
  let probeUrl: URL;
  try {
    probeUrl = probeUrlFor(url);
  } catch (err) {
    if (err instanceof SseHubTypeError) fail(err.message, 2);
    throw err;
  }
  const report = await doctor(probeUrl);
  process.stdout.write(`${redactUrls(report.line)}\n`);
  process.exit(report.code);
}

export function fail(message: string, code: number): never {
  process.stderr.write(redactUrls(`sse-runserver: error: ${message}\n`));
  process.exit(code);
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
