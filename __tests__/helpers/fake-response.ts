// A stand-in for ServerResponse in pure unit tests (no sockets): records the
// head and every chunk, and emits 'close' on end() and destroy().
import { EventEmitter } from 'node:events';

export class FakeResponse extends EventEmitter {
  status = 0;
  headers: Record<string, string> = {};
  chunks: Buffer[] = [];
  writableLength = 0;
  ended = false;
  destroyed = false;
  headersSent = false;
  /** No socket: frames go through write(), as for any wrapped response. */
  socket = null;

  writeHead(status: number, headers: Record<string, string>): this {
    this.status = status;
    this.headers = headers;
    this.headersSent = true;
    return this;
  }

  flushHeaders(): void {}

  write(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    return true;
  }

  end(): this {
    this.ended = true;
    this.emit('close');
    return this;
  }

  destroy(): this {
    this.destroyed = true;
    this.emit('close');
    return this;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}
