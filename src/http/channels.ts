// GET /channels and GET /channels/<name> (docs/operations.md "Presence over
// HTTP"): who is connected, as JSON, across every process sharing the broker.
// Behind the same access rule as /publish; a bad channel name is a 400.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { assertChannelName } from '../core/channel.js';
import { HttpError } from '../core/errors.js';
import type { Hub } from '../core/hub.js';
import { recordRefusal } from './refusals.js';
import { sendError, sendJson, sendJsonError } from './respond.js';

/** Lets a request through or throws HttpError 401/403 (e.g. checkAccess from publish.ts). */
export type AccessCheck = (req: IncomingMessage) => void | Promise<void>;

export interface ChannelsOptions {
  hub: Hub;
  access: AccessCheck;
}

/** The body of GET /channels. */
export interface ChannelsBody {
  /** Live processes whose presence was summed. */
  processes: number;
  /** Open connections on all channels (one connection on two channels counts twice). */
  subscriptions: number;
  channels: { channel: string; connections: number; users: string[] }[];
}

/**
 * Answers `GET /channels` when `name` is undefined, else `GET /channels/<name>`
 * with `name` still URL-encoded as it came in the path.
 */
export type ChannelsHandler = (req: IncomingMessage, res: ServerResponse, name?: string) => Promise<void>;

export function createChannelsHandler(options: ChannelsOptions): ChannelsHandler {
  const { hub, access } = options;
  return async (req, res, name) => {
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        sendJsonError(res, 405, `use GET to read channels, not ${req.method}`, { Allow: 'GET, HEAD' });
        return;
      }
      await access(req);
      if (name === undefined) {
        const { processes, channels } = await hub.presenceOverview();
        const subscriptions = channels.reduce((sum, c) => sum + c.connections, 0);
        const body: ChannelsBody = { processes, subscriptions, channels };
        sendJson(res, 200, body);
        return;
      }
      const channel = assertChannelName(decode(name), 'channel');
      sendJson(res, 200, { channel, ...(await hub.presence(channel)) });
    } catch (err) {
      recordRefusal(hub, req, 'GET /channels', err);
      sendError(res, err, hub.options.logger);
    }
  };
}

function decode(name: string): string {
  try {
    return decodeURIComponent(name);
  } catch {
    throw new HttpError(400, 'the channel name in the path is not valid URL encoding');
  }
}
