// One open SSE stream. Invariant: a Connection never buffers without bound —
// if the client holds more than maxBufferedBytes of unsent bytes when the next
// frame arrives, the connection is ended (docs/guarantees.md#slow-clients), and the
// fan-out loop never waits for 'drain'.
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { encodePreamble, encodeRetry } from './frame.js';
import type { StreamPositions } from './positions.js';

export type CloseReason = 'client' | 'slow' | 'hub-closed' | 'server';

export interface ConnectionOptions {
  /** Sent as the stream's `retry:` field, in ms. */
  retry: number;
  /** Unsent bytes past which the next frame closes the connection. */
  maxBufferedBytes: number;
}

/**
 * The Connection a response carries, so that one shared 'close' listener
 * serves every stream: an idle stream then costs no closure of its own (docs/performance.md#what-keeps-it-fast).
 */
const CONNECTION = Symbol('sse-hub.connection');
type StreamResponse = ServerResponse & { [CONNECTION]?: Connection };

/** A socket error (reset by peer) ends the stream; 'close' follows and cleans up. */
function ignoreError(): void {}

/** One `retry:` preamble per retry value, shared by every stream. */
const preambles = new Map<number, Buffer>();

let lastFrame: Buffer | undefined;
let lastChunk: Buffer | undefined;

/**
 * `frame` as one HTTP/1.1 chunk (`<hex length>\r\n<frame>\r\n`). The fan-out
 * loop hands the same Buffer to every connection, so this is built once per
 * event, not once per subscriber (docs/performance.md#what-keeps-it-fast).
 */
function chunkOf(frame: Buffer): Buffer {
  if (frame !== lastFrame || lastChunk === undefined) {
    const head = `${frame.length.toString(16)}\r\n`;
    const chunk = Buffer.allocUnsafe(head.length + frame.length + 2);
    chunk.write(head, 0, 'latin1');
    frame.copy(chunk, head.length);
    chunk.write('\r\n', head.length + frame.length, 'latin1');
    lastFrame = frame;
    lastChunk = chunk;
  }
  return lastChunk;
}

/**
 * The socket a frame may be written to directly, already chunked: one write per
 * subscriber instead of OutgoingMessage's cork, three pieces and a nextTick
 * uncork (docs/performance.md#what-keeps-it-fast). Only for a plain chunked response that owns its socket and
 * whose res.write nothing wraps (compression middleware would); else null, and
 * frames go through res.write.
 */
function directSocket(res: ServerResponse): Socket | null {
  const { socket } = res;
  if (socket === null || res.write !== ServerResponse.prototype.write) return null;
  return (res as { chunkedEncoding?: boolean }).chunkedEncoding === true ? socket : null;
}

/** Sockets corked since the last tick; uncorked together by one nextTick. */
const corked: Socket[] = [];

/** Hubs holding the corks (see holdCorks); while any does, the nextTick leaves them on. */
let corkHolds = 0;

function uncorkAll(): void {
  if (corkHolds !== 0) return;
  for (const socket of corked) socket.uncork();
  corked.length = 0;
}

/**
 * Keeps sockets corked past the end of the tick, until releaseCorks(): a hub
 * that works off a backlog in short event-loop turns (so that new connections
 * are accepted between them) still sends each socket many events per syscall.
 */
export function holdCorks(): void {
  corkHolds++;
}

/** Ends one holdCorks(); the last one sends what the sockets hold. */
export function releaseCorks(): void {
  corkHolds--;
  uncorkAll();
}

/**
 * Writes `frame` to the socket as one chunk. The socket is corked until the
 * end of the tick, so events that arrive together (one Redis read) leave in
 * one syscall per socket, as res.write's own corking would do.
 */
function writeDirect(socket: Socket, frame: Buffer): boolean {
  if (socket.writableCorked === 0) {
    socket.cork();
    if (corked.push(socket) === 1) process.nextTick(uncorkAll);
  }
  const written = socket.write(chunkOf(frame));
  // Held across turns, a socket sends what it has once that fills a syscall:
  // bytes kept back by the hub are not bytes the client failed to take.
  if (corkHolds !== 0 && socket.writableLength >= HELD_BYTES) socket.uncork();
  return written;
}

/** A socket kept corked across turns (holdCorks) sends its bytes once this many are held. */
const HELD_BYTES = 64 * 1024;

/**
 * Writes frames no other connection writes at this point (a replay) as one
 * chunk: its head, the frames, its CRLF, under the same cork, so one syscall
 * sends them all. The frames are not copied: a replayed event's frame is
 * shared with every other replay of it (sharedFrame), and so are the bytes a
 * crowd of resuming clients has not taken yet.
 */
function writeDirectOwn(socket: Socket, frames: readonly Buffer[], bytes: number): boolean {
  if (socket.writableCorked === 0) {
    socket.cork();
    if (corked.push(socket) === 1) process.nextTick(uncorkAll);
  }
  socket.write(`${bytes.toString(16)}\r\n`, 'latin1');
  for (const frame of frames) socket.write(frame);
  return socket.write(CRLF);
}

const CRLF = Buffer.from('\r\n', 'latin1');

/**
 * Sends the head of an event stream at once (docs/protocol.md#the-stream): 200, the content type,
 * no caching or transforming (compression() honours no-transform), no proxy
 * buffering. Shared by Connection and the doctor's probe, so they never differ.
 */
export function writeStreamHead(req: IncomingMessage, res: ServerResponse): void {
  const headers: Record<string, string> = {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    'X-Accel-Buffering': 'no',
  };
  if (req.httpVersionMajor === 1 && req.httpVersionMinor === 1) headers.Connection = 'keep-alive';
  res.writeHead(200, headers);
  res.flushHeaders();
}

/**
 * The heartbeat's sub-tick counter, shared by every connection of a hub
 * (core/heartbeat.ts advances it). Not a clock: it only orders writes against
 * heartbeat checks.
 */
export interface HeartbeatTicks {
  tick: number;
}

/** Pacing gives the client this long to drain before it looks again; a backstop, never the pace. */
const DRAIN_BACKSTOP_MS = 100;

export class Connection {
  readonly channels: readonly string[];
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Why the connection ended, once it has. */
  closeReason: CloseReason | undefined;
  /** Heartbeat sub-tick of the last write; see core/heartbeat.ts. */
  lastWriteTick: number;
  /** Where the stream stands on each channel, when ids are ordered per channel only (core/positions.ts). */
  positions: StreamPositions | undefined;
  private readonly maxBufferedBytes: number;
  private readonly socket: Socket | null;
  private needDrain = false;
  private readonly ticks: HeartbeatTicks;
  private readonly onClose: (connection: Connection) => void;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    channels: readonly string[],
    options: ConnectionOptions,
    ticks: HeartbeatTicks,
    onClose: (connection: Connection) => void,
  ) {
    this.req = req;
    this.res = res;
    this.channels = channels;
    this.maxBufferedBytes = options.maxBufferedBytes;
    this.ticks = ticks;
    this.lastWriteTick = ticks.tick;
    this.onClose = onClose;
    this.closeReason = undefined;
    this.positions = undefined;

    writeStreamHead(req, res);
    let preamble = preambles.get(options.retry);
    if (preamble === undefined) preambles.set(options.retry, (preamble = encodePreamble(options.retry)));
    res.write(preamble);
    (res as StreamResponse)[CONNECTION] = this;
    res.on('close', Connection.onResponseClose);
    res.on('error', ignoreError);
    this.socket = directSocket(res);
    // The client may have left before we got here; 'close' has then already fired.
    if (res.destroyed || req.socket.destroyed) this.closed('client');
  }

  get open(): boolean {
    return this.closeReason === undefined;
  }

  /**
   * Writes a frame that is shared with every other subscriber. Returns false
   * when the connection is (now) closed, e.g. because it was too slow.
   */
  write(frame: Buffer): boolean {
    if (this.closeReason !== undefined) return false;
    // With a direct socket, res.writableLength is the socket's count (res
    // buffers nothing once it owns the socket). Reading the socket keeps
    // the fan-out loop off the response object: under Express every response
    // gets a hidden class of its own (app.handle's Object.setPrototypeOf), so
    // a property read on res per subscriber misses V8's inline caches.
    const buffered = this.socket === null ? this.res.writableLength : this.socket.writableLength;
    if (buffered > this.maxBufferedBytes) {
      this.end('slow');
      return false;
    }
    if (this.socket === null || frame.length === 0) this.res.write(frame);
    else if (!writeDirect(this.socket, frame)) this.awaitDrain(this.socket);
    this.lastWriteTick = this.ticks.tick;
    return true;
  }

  /** write() for a frame only this connection gets (a replay): never copied into a shared chunk. */
  writeOwn(frame: Buffer): boolean {
    return this.writeOwnFrames([frame], frame.length);
  }

  /**
   * write() for frames only this connection gets now (a replay), as one
   * chunk; never copied into one (see writeDirectOwn).
   */
  writeOwnFrames(frames: readonly Buffer[], bytes: number): boolean {
    if (this.socket === null || bytes === 0)
      return this.write(frames.length === 1 ? (frames[0] as Buffer) : Buffer.concat(frames, bytes));
    if (this.closeReason !== undefined) return false;
    if (this.res.writableLength > this.maxBufferedBytes) {
      this.end('slow');
      return false;
    }
    if (!writeDirectOwn(this.socket, frames, bytes)) this.awaitDrain(this.socket);
    this.lastWriteTick = this.ticks.tick;
    return true;
  }

  /**
   * The socket's buffer is full. res.write would have flagged this and emitted
   * 'drain' on res once the socket drained; whoever paces on res still gets it.
   */
  private awaitDrain(socket: Socket): void {
    if (this.needDrain) return;
    this.needDrain = true;
    socket.once('drain', () => {
      this.needDrain = false;
      this.res.emit('drain');
    });
  }

  /** Bytes written but not yet taken by the client (the socket's queue included). */
  get unsentBytes(): number {
    return this.res.writableLength;
  }

  /** Bytes a paced writer may still write before the connection is congested (at least 0). */
  get room(): number {
    return Math.max(0, this.maxBufferedBytes / 2 - this.res.writableLength);
  }

  /**
   * True while more than half of maxBufferedBytes waits unsent: whoever writes
   * at the client's pace (a history replay) pauses until whenWritable() resolves.
   */
  get congested(): boolean {
    return this.closeReason === undefined && this.res.writableLength > this.maxBufferedBytes / 2;
  }

  /**
   * Resolves at the next 'drain' of the response or of its socket (frames may
   * go to the socket directly), when the stream closes, or after 100 ms at the
   * latest. The caller checks `congested` again: one wake-up, not a promise
   * that the buffer is empty.
   */
  whenWritable(): Promise<void> {
    const { res } = this;
    const socket = res.socket;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, DRAIN_BACKSTOP_MS);
      function done(): void {
        clearTimeout(timer);
        res.off('drain', done);
        res.off('close', done);
        socket?.off('drain', done);
        resolve();
      }
      res.on('drain', done);
      res.on('close', done);
      socket?.on('drain', done);
    });
  }

  /**
   * Ends the stream cleanly (the browser reconnects after `retry`); with
   * `retryMs`, a last `retry:` frame first sets that delay instead. A slow
   * client is cut, not ended: its buffer is full, so nothing more is queued.
   */
  end(reason: CloseReason, retryMs?: number): void {
    if (this.closeReason !== undefined) return;
    this.closed(reason);
    if (reason === 'slow') {
      this.res.destroy();
    } else {
      if (retryMs !== undefined) this.res.write(encodeRetry(retryMs));
      this.res.end();
    }
  }

  /** The 'close' listener of every stream's response; `this` is the response. */
  private static onResponseClose(this: StreamResponse): void {
    this[CONNECTION]?.closed('client');
  }

  private closed(reason: CloseReason): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    this.onClose(this);
  }
}
