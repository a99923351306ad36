// History on Redis (docs/protocol.md#event-ids-and-history): one stream per channel, written by ONE Lua
// script that issues the id, appends to the stream (capped by size and ttl,
// exactly, so the ring buffer and the stream keep the same events) and PUBLISHes — so no other command can interleave and the stream order is
// the delivery order. Ids come from the Redis server clock (`TIME`), so they
// keep growing across processes and after Redis restarts empty.
// Used by RedisBroker and by `sse-send --history`; needs only a way to send commands.
// On a Redis Cluster every key of a channel carries the channel as its hash
// tag (`{channel}`), so each script touches one slot; ids then come from the
// clock of the channel's own shard (docs/deployment.md#ids-across-shards).
import { createHash } from 'node:crypto';
import type { ChannelHistory, HistoryLimits, HistoryPage, HistorySnapshot } from '../core/broker.js';
import type { SseEvent } from '../core/event.js';
import { compareIds, historyHorizon } from '../core/history.js';
import { decodePayload } from './redis-wire.js';

/** Sends one raw command (node-redis `client.sendCommand`); `key` routes it on a cluster. */
export type RunCommand = (args: string[], key?: string) => Promise<unknown>;

export interface HistoryKeys {
  /** The id counter that `channel`'s ids come from. */
  lastId: (channel: string) => string;
  /** Where the history that `channel`'s counter serves begins. */
  start: (channel: string) => string;
  stream: (channel: string) => string;
}

/**
 * The Redis keys history uses, all under the channel prefix. One Redis: one
 * counter for every channel (ids ordered across channels). Cluster
 * (`perSlot`): a counter per channel, hash-tagged with it like its stream.
 */
export function historyKeys(prefix: string, perSlot = false): HistoryKeys {
  if (perSlot) {
    // The tag is the Redis channel name itself, so a sharded SPUBLISH from the
    // script is in the script's slot too.
    return {
      lastId: (channel) => `${prefix}sse-hub:last-id:{${prefix}${channel}}`,
      start: (channel) => `${prefix}sse-hub:history-start:{${prefix}${channel}}`,
      stream: (channel) => `${prefix}sse-hub:history:{${prefix}${channel}}`,
    };
  }
  return {
    lastId: () => `${prefix}sse-hub:last-id`,
    start: () => `${prefix}sse-hub:history-start`,
    stream: (channel) => `${prefix}sse-hub:history:${channel}`,
  };
}

// Shared by both scripts. KEYS[1] = last-id, KEYS[2] = history-start.
// alloc() returns an id greater than every id issued before: the server clock
// in ms, or the last id's ms with the next sequence when the clock has not moved
// on (or went back). history-start marks where this Redis's history begins:
// a client whose last id is older may have missed events (Redis restarted).
// CLOCK: the caller's clock as `ms-seq`, or '' for this Redis's own (TIME).
// On a cluster the caller's is given, so that ids on channels of different
// shards follow one clock per publisher and not each shard's
// (docs/deployment.md#ids-across-shards).
const prelude = (clock: string): string => `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nowSeq = 0
local clock = ${clock}
if clock and clock ~= '' then
  local cms, cseq = string.match(clock, '^(%d+)%-(%d+)$')
  now = tonumber(cms); nowSeq = tonumber(cseq)
end
local function fmt(n) return string.format('%.0f', n) end
local function alloc()
  local ms, seq = now, nowSeq
  local last = redis.call('GET', KEYS[1])
  if last then
    local lms, lseq = string.match(last, '^(%d+)%-(%d+)$')
    lms = tonumber(lms); lseq = tonumber(lseq)
    if lms and (lms > ms or (lms == ms and lseq >= seq)) then ms = lms; seq = lseq + 1 end
  end
  local id = fmt(ms) .. '-' .. fmt(seq)
  redis.call('SET', KEYS[1], id)
  return id
end
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SET', KEYS[2], alloc()) end
`;

// KEYS[3] = the channel's stream. ARGV: pubsub channel, payload head
// (`["event","data"` — the django_sse array without its end), size, ttl, and
// the publish command (PUBLISH, or SPUBLISH for sharded pub/sub on a cluster), the clock.
const PUBLISH_SCRIPT = `${prelude('ARGV[6]')}
local id = alloc()
local payload = ARGV[2] .. ',"' .. id .. '"]'
local ttl = tonumber(ARGV[4])
redis.call('XADD', KEYS[3], id, 'p', payload)
-- Trim with XDEL, not XTRIM/MAXLEN: only XDEL moves the stream's
-- max-deleted-entry-id, which tells a resuming client whether it missed events.
local function drop(entries)
  for i = 1, #entries do redis.call('XDEL', KEYS[3], entries[i][1]) end
end
drop(redis.call('XRANGE', KEYS[3], '-', '(' .. fmt(now - ttl * 1000) .. '-0'))
local excess = redis.call('XLEN', KEYS[3]) - tonumber(ARGV[3])
if excess > 0 then drop(redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', excess)) end
redis.call('EXPIRE', KEYS[3], ttl)
redis.call(ARGV[5], ARGV[1], payload)
return id
`;

// KEYS[3..] = streams; ARGV[1] = events per stream at most ('0': all);
// ARGV[i + 1] = the id after which to read KEYS[i + 2]; the ARGV after those
// (ARGV[#KEYS]) is the clock. Paged, so one call never copies a whole history
// (at 1000 × 8 KB that blocked Redis for 100+ ms).
// Returns { start, now, lastId, { maxDeleted, oldest, { {id, {'p', payload}}, ... } }, ... }.
const READ_SCRIPT = `${prelude('ARGV[#KEYS]')}
local lastId = redis.call('GET', KEYS[1])
if not lastId then lastId = alloc() end
local count = tonumber(ARGV[1])
local out = { redis.call('GET', KEYS[2]), fmt(now), lastId }
for i = 3, #KEYS do
  local key = KEYS[i]
  if redis.call('EXISTS', key) == 1 then
    local info = redis.call('XINFO', 'STREAM', key)
    local maxDeleted = ''
    for j = 1, #info, 2 do
      if info[j] == 'max-deleted-entry-id' then maxDeleted = info[j + 1] end
    end
    local first = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)
    local oldest = ''
    if first[1] then oldest = first[1][1] end
    local entries
    if count > 0 then
      entries = redis.call('XRANGE', key, '(' .. ARGV[i - 1], '+', 'COUNT', count)
    else
      entries = redis.call('XRANGE', key, '(' .. ARGV[i - 1], '+')
    end
    out[#out + 1] = { maxDeleted, oldest, entries }
  else
    out[#out + 1] = { '', '', {} }
  end
end
return out
`;

export const sha1 = (text: string): string => createHash('sha1').update(text).digest('hex');
const PUBLISH_SHA = sha1(PUBLISH_SCRIPT);
const READ_SHA = sha1(READ_SCRIPT);

/** EVALSHA, falling back to EVAL when Redis lost its script cache (restart, SCRIPT FLUSH). */
export async function runScript(
  run: RunCommand,
  script: string,
  sha: string,
  keys: string[],
  args: string[],
): Promise<unknown> {
  const tail = [String(keys.length), ...keys, ...args];
  // Routed by the last key: the channel's stream (same slot as its counter on a cluster).
  const route = keys[keys.length - 1];
  try {
    return await run(['EVALSHA', sha, ...tail], route);
  } catch (err) {
    if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
    return run(['EVAL', script, ...tail], route);
  }
}

/** The django_sse array of `event` without its closing bracket; the script appends the id. */
function payloadHead(event: SseEvent): string {
  return JSON.stringify([event.event, event.data]).slice(0, -1);
}

/** Issues the id, appends to the channel's stream and publishes, in one script. Resolves to the id. */
export async function publishWithHistory(
  run: RunCommand,
  prefix: string,
  channel: string,
  event: SseEvent,
  limits: HistoryLimits,
  perSlot = false,
  sharded = false,
  clock?: string,
): Promise<string> {
  const keys = historyKeys(prefix, perSlot);
  const id = await runScript(
    run,
    PUBLISH_SCRIPT,
    PUBLISH_SHA,
    [keys.lastId(channel), keys.start(channel), keys.stream(channel)],
    [
      prefix + channel,
      payloadHead(event),
      String(limits.size),
      String(limits.ttl),
      sharded ? 'SPUBLISH' : 'PUBLISH',
      clock ?? '',
    ],
  );
  return String(id);
}

type StreamEntry = [id: string, fields: string[]];
type ChannelReply = [maxDeleted: string, oldest: string, entries: StreamEntry[]];

/**
 * Reads every channel's kept events after its id (one page of them, with
 * `page`), in one script (one instant). On a cluster (`perSlot`), one script per channel, each on its own
 * slot; `lastId` is then the greatest of their counters.
 */
export async function readHistory(
  run: RunCommand,
  prefix: string,
  after: ReadonlyMap<string, string>,
  limits: HistoryLimits,
  page?: HistoryPage,
  perSlot = false,
  clock?: string,
): Promise<HistorySnapshot> {
  const count = page === undefined ? 0 : Math.max(1, Math.floor(page.count));
  if (perSlot && after.size > 1) {
    const parts = await Promise.all(
      [...after].map(([channel, id]) => readHistory(run, prefix, new Map([[channel, id]]), limits, page, true, clock)),
    );
    const channels = new Map<string, ChannelHistory>();
    let lastId = '0-0';
    for (const part of parts) {
      for (const [channel, kept] of part.channels) channels.set(channel, kept);
      lastId = compareIds(part.lastId, lastId) > 0 ? part.lastId : lastId;
    }
    return { channels, lastId };
  }
  const keys = historyKeys(prefix, perSlot);
  const channels = [...after.keys()];
  // With no channel on a cluster there is no slot to ask; the caller's clock is
  // where its next ids start (the hub marks where a catch-up would begin).
  if (perSlot && channels.length === 0) return { channels: new Map(), lastId: clock ?? '0-0' };
  const first = channels[0] ?? '';
  const reply = (await runScript(
    run,
    READ_SCRIPT,
    READ_SHA,
    [keys.lastId(first), keys.start(first), ...channels.map(keys.stream)],
    [String(count), ...channels.map((channel) => after.get(channel) as string), clock ?? ''],
  )) as [string, string, string, ...ChannelReply[]];
  const [start, now, lastId] = reply;
  const result = new Map<string, ChannelHistory>();
  channels.forEach((channel, i) => {
    const [maxDeleted, oldest, entries] = reply[i + 3] as ChannelReply;
    const events: SseEvent[] = [];
    for (const [, fields] of entries) {
      const payload = fields[fields.indexOf('p') + 1];
      if (payload === undefined) continue;
      const { event, wellFormed } = decodePayload(payload);
      if (wellFormed && event.id !== undefined) events.push(event);
    }
    result.set(channel, {
      events,
      // A full page: there may be more (at worst the next read finds none).
      more: count > 0 && entries.length === count,
      oldestId: oldest === '' ? null : oldest,
      // 0-0 is what Redis reports when nothing was ever deleted.
      horizon: historyHorizon(
        maxDeleted === '' || maxDeleted === '0-0' ? null : maxDeleted,
        start,
        Number(now),
        limits.ttl,
      ),
    });
  });
  return { channels: result, lastId };
}
