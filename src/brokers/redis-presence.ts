// Presence on Redis (docs/operations.md "Presence"): each process keeps one
// hash, channel → [connections, users], with a TTL, and registers itself in a
// sorted set scored by when that record expires (by the Redis clock, so hosts'
// clocks never matter). Readers sum the live records of the other processes.
// Invariant: the cost depends on how many channels and users a process has,
// never on the event rate — the record is rewritten at most once a second and
// only when it changed, else its TTL is extended every third of the TTL.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { ChannelPresence, PresenceHandle, PresenceReading, PresenceSource } from '../core/broker.js';
import type { Logger } from '../core/logger.js';
import { addPresence } from '../core/presence.js';
import { runScript, sha1, type RunCommand } from './redis-history.js';

/** How often a process looks whether its presence changed (and then rewrites its record), in ms. */
export const PRESENCE_CHANGE_CHECK = 1000;

/** The Redis keys of presence; one hash tag, so a cluster keeps them in one slot. */
export function presenceKeys(prefix: string): { registry: string; record: (id: string) => string } {
  const base = `${prefix}{sse-hub:presence}`;
  return { registry: base, record: (id) => `${base}:${id}` };
}

// KEYS[1] = registry, KEYS[2] = this process's record. ARGV[1] = process id,
// ARGV[2] = ttl ms, ARGV[3] = '1' rewrite / '0' extend, ARGV[4..] = field, value...
// Returns whether the record exists afterwards (an extend after Redis lost it says 0).
const WRITE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[2])
  local i = 4
  while i <= #ARGV do
    local last = math.min(i + 999, #ARGV)
    redis.call('HSET', KEYS[2], unpack(ARGV, i, last))
    i = last + 1
  end
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('EXISTS', KEYS[2])
`;

// KEYS[1] = registry. ARGV[1] = record key prefix, ARGV[2] = the reader's id,
// ARGV[3] = one channel, or '' for all. Returns one field/value list per live process.
const READ_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
  if id ~= ARGV[2] then
    local key = ARGV[1] .. id
    if ARGV[3] == '' then
      out[#out + 1] = redis.call('HGETALL', key)
    else
      local v = redis.call('HGET', key, ARGV[3])
      if v then out[#out + 1] = { ARGV[3], v } else out[#out + 1] = {} end
    end
  end
end
return out
`;

const WRITE_SHA = sha1(WRITE_SCRIPT);
const READ_SHA = sha1(READ_SCRIPT);

export interface RedisPresenceOptions {
  run: RunCommand;
  prefix: string;
  /** Ms a record lives without a refresh. */
  ttl: number;
  logger: Logger;
  /** Whether commands can be sent now (the publishing connection is ready). */
  ready: () => boolean;
}

/** Encodes one channel's presence as stored: `[connections, [users]]`. */
export function encodePresence(presence: ChannelPresence): string {
  return JSON.stringify([presence.connections, presence.users]);
}

export function decodePresence(value: string): ChannelPresence | undefined {
  try {
    const parsed: unknown = JSON.parse(value);
    if (!Array.isArray(parsed) || typeof parsed[0] !== 'number' || !Array.isArray(parsed[1])) return undefined;
    return { connections: parsed[0], users: (parsed[1] as unknown[]).filter((u) => typeof u === 'string') };
  } catch {
    return undefined;
  }
}

/** The arguments of one rewrite: field, value, ... for every channel of `snapshot`. */
export function recordArgs(snapshot: ReadonlyMap<string, ChannelPresence>): string[] {
  const args: string[] = [];
  for (const [channel, presence] of snapshot) args.push(channel, encodePresence(presence));
  return args;
}

/** One process's presence record: refreshed on a timer, withdrawn on stop(). */
export class RedisPresence implements PresenceHandle {
  readonly id = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private readonly options: RedisPresenceOptions;
  private readonly keys: ReturnType<typeof presenceKeys>;
  private readonly source: PresenceSource;
  private readonly timer: NodeJS.Timeout;
  /** The source version last written; -1 forces a rewrite. */
  private written = -1;
  private lastWrite = 0;
  /** Channels in the record last written (an empty record is no key at all in Redis). */
  private writtenChannels = 0;
  private writing = false;
  private stopped = false;
  /** Resolves once the record is withdrawn (awaited by RedisBroker.close). */
  withdrawn: Promise<void> = Promise.resolve();

  constructor(source: PresenceSource, options: RedisPresenceOptions) {
    this.source = source;
    this.options = options;
    this.keys = presenceKeys(options.prefix);
    this.timer = setInterval(() => void this.refresh(), PRESENCE_CHANGE_CHECK);
    this.timer.unref();
    void this.refresh();
  }

  /** Rewrites the record when the source changed; else extends its TTL every third of it. */
  async refresh(now = Date.now()): Promise<void> {
    if (this.writing || this.stopped || !this.options.ready()) return;
    const version = this.source.version;
    const rewrite = version !== this.written;
    if (!rewrite && now - this.lastWrite < this.options.ttl / 3) return;
    this.writing = true;
    try {
      const args = rewrite ? recordArgs(this.source.snapshot()) : [];
      if (rewrite) this.writtenChannels = args.length / 2;
      const exists = await runScript(
        this.options.run,
        WRITE_SCRIPT,
        WRITE_SHA,
        [this.keys.registry, this.keys.record(this.id)],
        [this.id, String(this.options.ttl), rewrite ? '1' : '0', ...args],
      );
      this.lastWrite = now;
      this.written = version;
      // Redis lost the record (restart, flush) while this process has connections: write it again.
      if (!rewrite && Number(exists) === 0 && this.writtenChannels > 0) this.written = -1;
    } catch (err) {
      this.options.logger.debug('could not refresh the presence record; retrying', { error: String(err) });
    } finally {
      this.writing = false;
    }
  }

  async readOthers(channel?: string): Promise<PresenceReading> {
    const reply = (await runScript(
      this.options.run,
      READ_SCRIPT,
      READ_SHA,
      [this.keys.registry],
      [this.keys.record(''), this.id, channel ?? ''],
    )) as string[][];
    const reading: PresenceReading = { processes: reply.length, channels: new Map() };
    for (const fields of reply) {
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const presence = decodePresence(fields[i + 1] as string);
        if (presence !== undefined) addPresence(reading.channels, fields[i] as string, presence);
      }
    }
    return reading;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    if (!this.options.ready()) return;
    // A clean shutdown drops out at once instead of after the TTL.
    this.withdrawn = this.options
      .run(['DEL', this.keys.record(this.id)])
      .then(() => this.options.run(['ZREM', this.keys.registry, this.id]))
      .then(
        () => undefined,
        (err: unknown) => this.options.logger.debug('could not withdraw the presence record', { error: String(err) }),
      );
  }
}
