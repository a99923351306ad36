// What a channel name is (docs/protocol.md#channels). Every channel that enters sse-hub — from a
// query string, a session, sendEvent or Redis — passes through here first;
// Hub and the brokers trust the names they are given.
import { ChannelNameError } from './errors.js';

export const MAX_CHANNEL_LENGTH = 128;
const CHANNEL_PATTERN = /^[A-Za-z0-9_.:@-]{1,128}$/;

export function isChannelName(value: unknown): value is string {
  return typeof value === 'string' && CHANNEL_PATTERN.test(value);
}

/** Returns `value` if it is a valid channel name, else throws ChannelNameError (a TypeError). */
export function assertChannelName(value: unknown, what = 'channel'): string {
  if (isChannelName(value)) return value;
  if (typeof value !== 'string') {
    throw new ChannelNameError(`${what} must be a string channel name, got ${typeof value}`);
  }
  const shown = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value.length === 0) throw new ChannelNameError(`${what} must not be empty`);
  if (value.length > MAX_CHANNEL_LENGTH) {
    throw new ChannelNameError(
      `${what} ${shown} is ${value.length} characters long; the limit is ${MAX_CHANNEL_LENGTH}`,
    );
  }
  throw new ChannelNameError(
    `${what} ${shown} is not a valid channel name: use 1-${MAX_CHANNEL_LENGTH} characters of A-Z a-z 0-9 _ . : @ -`,
  );
}

/**
 * Parses `all,foo` (or several such values) into a channel list: trimmed,
 * empties dropped, duplicates removed, order kept. Throws ChannelNameError for
 * an empty result, an invalid name, or more than `max` channels.
 */
export function parseChannelList(raw: string | readonly string[] | null | undefined, max: number): string[] {
  const parts = (typeof raw === 'string' ? [raw] : (raw ?? [])).flatMap((value) => value.split(','));
  const channels = new Set<string>();
  for (const part of parts) {
    const name = part.trim();
    if (name !== '') channels.add(assertChannelName(name));
  }
  if (channels.size === 0) {
    throw new ChannelNameError('no channels given: ask for at least one, e.g. ?channels=all', 'SSE_ERR_NO_CHANNELS');
  }
  if (channels.size > max) {
    throw new ChannelNameError(
      `${channels.size} channels asked for; at most ${max} are allowed per connection (maxChannels)`,
      'SSE_ERR_TOO_MANY_CHANNELS',
    );
  }
  return [...channels];
}
