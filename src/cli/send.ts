// sse-send <channel> <event> <data>: publishes one event, for scripts and
// manual tests (docs/protocol.md#sse-send) — straight to Redis with --redis/REDIS_URL, else via
// POST /publish to --server. <data> is sent verbatim as the data string.
// Exit codes: 0 sent, 1 not sent (server or broker unreachable, refused), 2 bad usage.
import { Command, CommanderError, Option } from 'commander';
import { createClient } from 'redis';
import { assertChannelName } from '../core/channel.js';
import { SseHubTypeError, UsageError } from '../core/errors.js';
import { toEvent } from '../core/event.js';
import { DEFAULT_HISTORY } from '../core/options.js';
import type { SseEvent } from '../core/event.js';
import { publishWithHistory } from '../brokers/redis-history.js';
import { encodePayload } from '../brokers/redis-wire.js';
import { redactUrls } from '../core/redact.js';
import { RedisBroker } from '../brokers/redis.js';
import { addFlags, positiveInt, REDIS_HA_FLAGS, redisUrl } from './flags.js';
import { redisTarget, type RedisTarget, type RedisTargetFlags } from './redis-target.js';

interface SendFlags extends RedisTargetFlags {
  server: string;
  token?: string;
  id?: string;
  channelPrefix: string;
  history?: number;
}

function buildSendCommand(): Command {
  const command = new Command('sse-send')
    .description('Publish one event to an sse-hub channel (to Redis with --redis, else POST /publish to --server)')
    .argument('<channel>', 'channel name, e.g. all')
    .argument('<event>', 'event type, e.g. message')
    .argument('<data>', 'data, sent verbatim as the data string')
    .addOption(
      new Option('--redis <url>', 'publish straight to Redis (also SSE_REDIS_URL)')
        .env('REDIS_URL')
        .argParser(redisUrl),
    )
    .addOption(
      new Option('--server <url>', 'sse-runserver to POST /publish to')
        .env('SSE_SERVER')
        .default('http://127.0.0.1:8888'),
    )
    .addOption(new Option('--token <token>', 'bearer token for POST /publish').env('SSE_PUBLISH_TOKEN'))
    .addOption(
      new Option('--channel-prefix <prefix>', 'prefix of Redis channel names').env('SSE_CHANNEL_PREFIX').default(''),
    )
    .addOption(new Option('--id <id>', "event id (the frame's id: field)"))
    .addOption(
      new Option(
        '--history <n>',
        'with --redis: issue the id and keep the event for replay, as sse-runserver --history does (prints the id)',
      )
        .env('SSE_HISTORY')
        .argParser(positiveInt),
    )
    .exitOverride()
    .configureOutput({ writeErr: () => undefined });
  return addFlags(command, REDIS_HA_FLAGS);
}

/** Runs sse-send; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const command = buildSendCommand();
  try {
    command.parse(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return 0;
      return usage(err.message.replace(/^error: /, ''));
    }
    throw err;
  }
  const [channel, type, data] = command.args as [string, string, string];
  const flags = command.opts<SendFlags>();
  let event;
  try {
    assertChannelName(channel);
    event = toEvent(type, data, flags.id);
  } catch (err) {
    if (err instanceof SseHubTypeError) return usage(err.message);
    throw err;
  }
  const target = redisTarget(flags);
  if (typeof target === 'string') return usage(target);
  try {
    const id =
      target === undefined
        ? await sendToServer(flags, channel, event)
        : target.redisUrl !== undefined
          ? await sendToRedis(target.redisUrl, flags, channel, event)
          : await sendToHaRedis(target, flags, channel, event);
    if (id !== undefined) process.stdout.write(`${id}\n`);
    return 0;
  } catch (err) {
    if (err instanceof SseHubTypeError) return usage(err.message);
    process.stderr.write(redactUrls(`sse-send: error: ${(err as Error).message}\n`));
    return 1;
  }
}

function usage(message: string): number {
  process.stderr.write(redactUrls(`sse-send: error: ${message}\n`));
  return 2;
}

async function sendToRedis(
  url: string,
  flags: SendFlags,
  channel: string,
  event: SseEvent,
): Promise<string | undefined> {
  const client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 3000 } });
  let lastError: unknown;
  client.on('error', (err: unknown) => {
    lastError = err;
  });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(`cannot reach Redis at ${redactUrls(url)}: ${describe(lastError ?? err)}`);
  }
  try {
    // --history: the same Lua script as the server's hub (id + stream + PUBLISH).
    if (flags.history !== undefined) {
      const limits = { size: flags.history, ttl: DEFAULT_HISTORY.ttl };
      return await publishWithHistory((args) => client.sendCommand(args), flags.channelPrefix, channel, event, limits);
    }
    await client.publish(flags.channelPrefix + channel, encodePayload(event));
    return undefined;
  } finally {
    await client.close().catch(() => client.destroy());
  }
}

/**
 * Through a Sentinel-managed master or a cluster: the server's own broker, so
 * the publish (plain, sharded, or with history) is exactly the hub's.
 */
async function sendToHaRedis(
  target: RedisTarget,
  flags: SendFlags,
  channel: string,
  event: SseEvent,
): Promise<string | undefined> {
  const broker = new RedisBroker({
    sentinel: target.redisSentinel,
    cluster: target.redisCluster && { ...target.redisCluster, pubsub: flags.pubsub },
    channelPrefix: flags.channelPrefix,
  });
  try {
    await broker.ready(5000).catch(() => {
      throw new Error(`cannot reach Redis (${target.label}) within 5 s`);
    });
    if (flags.history !== undefined) {
      return await broker.publishWithHistory(channel, event, { size: flags.history, ttl: DEFAULT_HISTORY.ttl });
    }
    await broker.publish(channel, event);
    return undefined;
  } finally {
    await broker.close();
  }
}

async function sendToServer(
  flags: SendFlags,
  channel: string,
  event: { event: string; data: string; id?: string },
): Promise<string | undefined> {
  let url: URL;
  try {
    url = new URL('/publish', flags.server);
  } catch {
    throw new UsageError(`--server must be a URL such as http://127.0.0.1:8888, got "${flags.server}"`);
  }
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (flags.token) headers.Authorization = `Bearer ${flags.token}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers,
      body: JSON.stringify({ channel, ...event }),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new Error(`cannot reach sse-runserver at ${url.origin}: ${describe(err)}`);
  }
  const body = (await response.json().catch(() => ({}))) as { error?: string; id?: string };
  if (!response.ok) throw new Error(`${url.origin} answered ${response.status}: ${body.error ?? response.statusText}`);
  return body.id;
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: unknown }).cause;
    if (cause instanceof Error && cause.message) return cause.message;
    if (err.message) return err.message;
    if ((err as NodeJS.ErrnoException).code) return String((err as NodeJS.ErrnoException).code);
  }
  return String(err);
}
