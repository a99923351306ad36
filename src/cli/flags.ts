// One table of sse-runserver's flags: flag ↔ environment variable ↔ default ↔
// help. It feeds commander (and so --help) and the table in docs/cli.md; add a flag
// here and nowhere else.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { redactUrls } from '../core/redact.js';

export interface FlagSpec {
  /** commander flags, e.g. `--port <n>`. */
  flags: string;
  /** Environment variable the flag reads when not given. */
  env: string;
  description: string;
  /** Default value, as shown in --help. */
  defaultValue?: string | number | boolean | string[];
  parse?: (value: string, previous: unknown) => unknown;
  choices?: readonly string[];
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError(`expected a positive whole number, got "${value}"`);
  }
  return n;
}

/** A whole number ≥ 0, where 0 turns a cap off. */
export function wholeNumber(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`expected a whole number >= 0 (0: no cap), got "${value}"`);
  }
  return n;
}

/** A whole number ≥ 0 where 0 means "none" rather than "no cap" (e.g. --drain-time). */
export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`expected a whole number, 0 or more, got "${value}"`);
  }
  return n;
}

/**
 * Collects each `--session-secret` verbatim, unsplit. The comma list is split
 * and checked later (runserver.ts), so that a refusal can name the problem
 * without echoing the secret, as commander's own error would.
 */
export function collectRaw(value: string, previous: unknown): string[] {
  return Array.isArray(previous) ? [...(previous as string[]), value] : [value];
}

export function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n > 65535) {
    throw new InvalidArgumentError(`expected a port number 0-65535, got "${value}"`);
  }
  return n;
}

/** Repeatable and comma-separated: `--x a --x b,c` → [a, b, c]. */
export function list(value: string, previous: unknown): string[] {
  const items = value
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');
  return Array.isArray(previous) ? [...(previous as string[]), ...items] : items;
}

export function redisUrl(value: string): string {
  if (!/^rediss?:\/\//.test(value))
    throw new InvalidArgumentError(`expected a redis:// URL, got "${redactUrls(value)}"`);
  return value;
}

/** A comma list of host:port (sentinels). */
export function hostPortList(value: string, previous: unknown): string[] {
  const items = list(value, previous);
  for (const item of items) {
    if (!/^\[?[^\]\s]+?\]?:\d{1,5}$/.test(item)) throw new InvalidArgumentError(`expected host:port, got "${item}"`);
  }
  return items;
}

/** A comma list of redis:// URLs (cluster seed nodes). */
export function redisUrlList(value: string, previous: unknown): string[] {
  const items = list(value, previous);
  for (const item of items) redisUrl(item);
  return items;
}

/** Flags that pick and reach a highly available Redis; sse-runserver and sse-send share them. */
export const REDIS_HA_FLAGS: FlagSpec[] = [
  {
    flags: '--redis-sentinel <host:port,...>',
    env: 'SSE_REDIS_SENTINEL',
    description:
      'use the master that these Redis Sentinels manage, following failovers (instead of --redis); needs --redis-sentinel-name',
    parse: hostPortList,
  },
  {
    flags: '--redis-sentinel-name <name>',
    env: 'SSE_REDIS_SENTINEL_NAME',
    description: "the master's name in the sentinels' configuration (sentinel monitor <name> ...)",
  },
  {
    flags: '--redis-cluster <url,...>',
    env: 'SSE_REDIS_CLUSTER',
    description: 'use this Redis Cluster (seed node URLs; one reachable node is enough) instead of --redis',
    parse: redisUrlList,
  },
  {
    flags: '--pubsub <mode>',
    env: 'SSE_PUBSUB',
    description:
      'pub/sub on a Redis Cluster: classic (a plain PUBLISH on any node reaches everyone) or sharded (SPUBLISH: each message stays in its shard; plain-PUBLISH publishers are not heard)',
    defaultValue: 'classic',
    choices: ['classic', 'sharded'],
  },
  {
    flags: '--redis-username <user>',
    env: 'SSE_REDIS_USERNAME',
    description: 'ACL user of the Sentinel-managed or cluster nodes (with --redis, put it in the URL)',
  },
  {
    flags: '--redis-password <password>',
    env: 'SSE_REDIS_PASSWORD',
    description:
      'password of the Sentinel-managed or cluster nodes (prefer the environment variable: flags show in ps)',
  },
  {
    flags: '--redis-sentinel-username <user>',
    env: 'SSE_REDIS_SENTINEL_USERNAME',
    description: 'ACL user of the sentinels themselves',
  },
  {
    flags: '--redis-sentinel-password <password>',
    env: 'SSE_REDIS_SENTINEL_PASSWORD',
    description: 'password of the sentinels themselves (their own requirepass)',
  },
  {
    flags: '--redis-tls',
    env: 'SSE_REDIS_TLS',
    description: 'TLS to the sentinels and the nodes they name (a cluster takes rediss:// URLs instead)',
    defaultValue: false,
  },
];

export const RUNSERVER_FLAGS: FlagSpec[] = [
  { flags: '--address <host>', env: 'SSE_ADDRESS', description: 'address to listen on', defaultValue: '127.0.0.1' },
  {
    flags: '--port <n>',
    env: 'SSE_PORT',
    description: 'port to listen on (0: any free port)',
    defaultValue: 8888,
    parse: port,
  },
  { flags: '--path <path>', env: 'SSE_PATH', description: 'path of the SSE endpoint', defaultValue: '/' },
  {
    flags: '--redis <url>',
    env: 'REDIS_URL',
    description: 'Redis URL for the redis broker (also SSE_REDIS_URL); without it, the in-memory broker',
    parse: redisUrl,
  },
  ...REDIS_HA_FLAGS,
  {
    flags: '--redis-wait-replicas <n>',
    env: 'SSE_REDIS_WAIT_REPLICAS',
    description:
      'with --history: after each write, WAIT until n replicas have it (within the send timeout), so a failover cannot lose an acknowledged event; costs a replication round trip per event',
    parse: positiveInt,
  },
  {
    flags: '--channel-prefix <prefix>',
    env: 'SSE_CHANNEL_PREFIX',
    description: 'prefix of every Redis channel name',
    defaultValue: '',
  },
  {
    flags: '--channels <mode>',
    env: 'SSE_CHANNELS',
    description: 'where channels come from: the query (?channels=a,b), the session, or a signed token (docs/tokens.md)',
    defaultValue: 'query',
    choices: ['query', 'session', 'token'],
  },
  {
    flags: '--session-secret <secret>',
    env: 'SSE_SESSION_SECRET',
    description:
      "session mode: the web app's express-session secret; repeat it or give a comma list to accept old secrets too (a secret with a comma or surrounding spaces: use SSE_SESSION_SECRETS or --session-secret-file)",
    parse: collectRaw,
  },
  {
    flags: '--session-secret-file <path>',
    env: 'SSE_SESSION_SECRET_FILE',
    description:
      'session mode: read the secrets from a file, one per line, verbatim (kept out of argv and the environment)',
  },
  {
    flags: '--user-channel-prefix <prefix>',
    env: 'SSE_USER_CHANNEL_PREFIX',
    description:
      "session mode: the user's own channel is <prefix><username>, e.g. user: gives user:bob (default: the bare username, as django_sse)",
    defaultValue: '',
  },
  {
    flags: '--session-cookie <name>',
    env: 'SSE_SESSION_COOKIE',
    description: "session mode: name of express-session's cookie",
    defaultValue: 'connect.sid',
  },
  {
    flags: '--session-prefix <prefix>',
    env: 'SSE_SESSION_PREFIX',
    description: 'session mode: Redis key prefix of the sessions (as connect-redis writes them)',
    defaultValue: 'sess:',
  },
  {
    flags: '--session-user-path <path>',
    env: 'SSE_SESSION_USER_PATH',
    description:
      'session mode: dotted path of the username in the session (default: user.username, username, passport.user)',
  },
  {
    flags: '--session-recheck <seconds>',
    env: 'SSE_SESSION_RECHECK',
    description: 'session mode: seconds between re-checks that close the streams of logged-out sessions',
    defaultValue: 60,
    parse: positiveInt,
  },
  {
    flags: '--session-lookup-timeout <ms>',
    env: 'SSE_SESSION_LOOKUP_TIMEOUT',
    description:
      'session mode: longest wait for the session store on a new stream; past it the stream gets 200 + retry: and ends',
    defaultValue: 2000,
    parse: positiveInt,
  },
  {
    flags: '--public-channels <list>',
    env: 'SSE_PUBLIC_CHANNELS',
    description: 'session mode: channels any logged-in user may add with ?channels= (comma list)',
    parse: list,
  },
  {
    flags: '--token-secret <secret>',
    env: 'SSE_TOKEN_SECRET',
    description:
      'token mode: HS256 secret (32+ bytes) the tokens are signed with; repeat it or give a comma list to accept old secrets too (a secret with a comma or surrounding spaces: SSE_TOKEN_SECRETS, a JSON array)',
    parse: collectRaw,
  },
  {
    flags: '--token-public-key <file>',
    env: 'SSE_TOKEN_PUBLIC_KEY',
    description:
      'token mode: PEM file of a public key (RS256, ES256, EdDSA) the tokens are signed with; repeatable for rotation',
    parse: list,
  },
  {
    flags: '--token-cookie <name>',
    env: 'SSE_TOKEN_COOKIE',
    description: 'token mode: name of the cookie holding the token (also read: Authorization: Bearer, ?token=)',
    defaultValue: 'sse_token',
  },
  {
    flags: '--cors-origin <origin>',
    env: 'SSE_CORS_ORIGIN',
    description:
      'an origin (https://app.example.com) whose pages may open the stream with credentials; repeatable or a comma list',
    parse: list,
  },
  {
    flags: '--publish-token <token>',
    env: 'SSE_PUBLISH_TOKEN',
    description:
      'require Authorization: Bearer <token> on POST /publish and allow it from any address (default: loopback only)',
  },
  {
    flags: '--admin-token <token>',
    env: 'SSE_ADMIN_TOKEN',
    description:
      'require Authorization: Bearer <token> on GET /channels and the admin dashboard, from any address (default: --publish-token, else loopback only)',
  },
  {
    flags: '--admin',
    env: 'SSE_ADMIN',
    description: 'serve the admin dashboard at /_admin/ (protected like GET /channels)',
    defaultValue: false,
  },
  {
    flags: '--presence-channels <list>',
    env: 'SSE_PRESENCE_CHANNELS',
    description:
      'channels that send presence events (join/leave with user and count) to their subscribers; comma list, * matches any characters, e.g. lobby,team-*',
    parse: list,
  },
  {
    flags: '--presence-debounce <ms>',
    env: 'SSE_PRESENCE_DEBOUNCE',
    description: 'ms a user must stay gone before their presence leave is sent (a reconnect within it sends nothing)',
    defaultValue: 2000,
    parse: positiveInt,
  },
  {
    flags: '--presence-ttl <seconds>',
    env: 'SSE_PRESENCE_TTL',
    description:
      "seconds a process's presence record lives in Redis unrefreshed: a process that dies drops out of presence within it",
    defaultValue: 15,
    parse: positiveInt,
  },
  {
    flags: '--heartbeat <ms>',
    env: 'SSE_HEARTBEAT',
    description: 'ms between pings on an idle stream',
    defaultValue: 15000,
    parse: positiveInt,
  },
  {
    flags: '--retry <ms>',
    env: 'SSE_RETRY',
    description: 'reconnection delay sent to browsers, ms',
    defaultValue: 3000,
    parse: positiveInt,
  },
  {
    flags: '--max-channels <n>',
    env: 'SSE_MAX_CHANNELS',
    description: 'channels one connection may listen on',
    defaultValue: 64,
    parse: positiveInt,
  },
  {
    flags: '--max-buffered-bytes <n>',
    env: 'SSE_MAX_BUFFERED_BYTES',
    description: 'unsent bytes after which a slow client is closed',
    defaultValue: 4 * 1024 * 1024,
    parse: positiveInt,
  },
  {
    flags: '--max-connections <n>',
    env: 'SSE_MAX_CONNECTIONS',
    description:
      'streams served at once per process; more get 200 + a jittered retry: and end (0: no cap; sse_hub_streams_refused_total)',
    defaultValue: 20_000,
    parse: wholeNumber,
  },
  {
    flags: '--max-connections-per-ip <n>',
    env: 'SSE_MAX_CONNECTIONS_PER_IP',
    description:
      'streams one client address (IPv6: one /64) may hold per process; off by default, since behind a proxy every stream has its address (0: no cap)',
    defaultValue: 0,
    parse: wholeNumber,
  },
  {
    flags: '--max-publish-bytes <n>',
    env: 'SSE_MAX_PUBLISH_BYTES',
    description:
      'largest POST /publish body, in bytes; a larger one gets 413 (sse_hub_publish_refused_total{reason="payload-too-large"})',
    defaultValue: 2 * 1024 * 1024,
    parse: positiveInt,
  },
  {
    flags: '--trust-proxy <list>',
    env: 'SSE_TRUST_PROXY',
    description:
      "reverse proxies (IP addresses, CIDR ranges, loopback, linklocal, uniquelocal; comma list) whose X-Forwarded-For names the client for --max-connections-per-ip, as Express's trust proxy (default: none, the socket address)",
    parse: list,
  },
  {
    flags: '--headers-timeout <ms>',
    env: 'SSE_HEADERS_TIMEOUT',
    description: 'ms a client may take to send its request headers; then 408 and close (Node: 60000)',
    defaultValue: 10_000,
    parse: positiveInt,
  },
  {
    flags: '--request-timeout <ms>',
    env: 'SSE_REQUEST_TIMEOUT',
    description: 'ms a client may take to send a whole request (a /publish body); never cuts a stream',
    defaultValue: 30_000,
    parse: positiveInt,
  },
  {
    flags: '--backlog <n>',
    env: 'SSE_BACKLOG',
    description:
      'connections the kernel queues while the server is busy, e.g. a reconnect storm (capped by net.core.somaxconn; Node: 511)',
    defaultValue: 4096,
    parse: positiveInt,
  },
  {
    flags: '--history <n>',
    env: 'SSE_HISTORY',
    description: 'events kept per channel for Last-Event-ID replay (default: off)',
    parse: positiveInt,
  },
  {
    flags: '--max-replays <n>',
    env: 'SSE_MAX_REPLAYS',
    description:
      'history replays (resumes with Last-Event-ID) running at once; one more waits on its open stream for a slot',
    defaultValue: 256,
    parse: positiveInt,
  },
  {
    flags: '--history-cache-bytes <n>',
    env: 'SSE_HISTORY_CACHE_BYTES',
    description:
      'bytes of recent history kept in memory for resumes, so a crowd of them reads Redis once per channel (at most 16 MiB a channel; 0: off)',
    defaultValue: 64 * 1024 * 1024,
    parse: nonNegativeInt,
  },
  {
    flags: '--replay-stall-timeout <ms>',
    env: 'SSE_REPLAY_STALL_TIMEOUT',
    description: 'ms a replay waits on a client that takes no bytes before closing it like a slow client',
    defaultValue: 30000,
    parse: positiveInt,
  },
  {
    flags: '--drain-time <ms>',
    env: 'SSE_DRAIN_TIME',
    description:
      'on SIGTERM/SIGINT, end the open streams in batches over this many ms, so their reconnects do not land at once (0: all at once)',
    defaultValue: 0,
    parse: nonNegativeInt,
  },
  {
    flags: '--workers <n>',
    env: 'SSE_WORKERS',
    description:
      'processes sharing the port (node:cluster), each with its own broker subscriptions (default: one per core with --redis, 1 with the in-memory broker, which allows no more)',
    parse: positiveInt,
  },
  {
    flags: '--metrics',
    env: 'SSE_METRICS',
    description: 'serve Prometheus metrics at GET /metrics (summed over all workers)',
    defaultValue: false,
  },
  {
    flags: '--heartbeat-event',
    env: 'SSE_HEARTBEAT_EVENT',
    description:
      'send the heartbeat as an event pages can see (event: heartbeat, data {"heartbeat":ms,"time":epoch ms}, also the first event of every stream) instead of a ": ping" comment',
    defaultValue: false,
  },
  {
    flags: '--doctor <url>',
    env: 'SSE_DOCTOR',
    description:
      "don't serve: check the stream through its public URL (the probe at <its path>_probe), print one line, exit 0 when clean, 1 when a proxy buffers or compresses it",
  },
  {
    flags: '--static <dir>',
    env: 'SSE_STATIC',
    description: 'also serve the files of <dir> (index.html at /) on paths no other route takes',
  },
  { flags: '--debug', env: 'SSE_DEBUG', description: 'log every connection and event', defaultValue: false },
];

/** Adds every flag of `specs` to `command`, each with its environment variable. */
export function addFlags(command: Command, specs: readonly FlagSpec[]): Command {
  for (const spec of specs) {
    const option = new Option(spec.flags, spec.description).env(spec.env);
    if (spec.defaultValue !== undefined) option.default(spec.defaultValue);
    if (spec.choices) option.choices(spec.choices);
    if (spec.parse) option.argParser(spec.parse);
    command.addOption(option);
  }
  return command;
}

/** The markdown table of flags for docs/cli.md (scripts/readme-flags.mjs writes it there). */
export function flagsMarkdown(specs: readonly FlagSpec[]): string {
  const rows = specs.map((s) => {
    const shown = s.defaultValue === undefined || s.defaultValue === '' ? '' : `\`${String(s.defaultValue)}\``;
    return `| \`${s.flags}\` | \`${s.env}\` | ${shown} | ${s.description} |`;
  });
  return ['| flag | environment | default | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
