// The `/_probe` stream that `sse-runserver --doctor` reads (docs/deployment.md#sse-runserver---doctor-url). It sends
// exactly the headers of a real stream, its first bytes at once, a `probe`
// event `delay` ms later and a `probe-end` event at `duration` ms, then ends.
// A proxy that buffers delivers all of it together at the end; one that
// compresses shows a Content-Encoding. Invariant: the headers stay those of
// core/connection.ts, or the probe no longer tells what a proxy does to streams.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { OptionError } from '../core/errors.js';
import { positiveInteger } from '../core/options.js';
import { sendJsonError } from './respond.js';
import { writeStreamHead } from '../core/connection.js';

/** Event sent `delay` ms after the first bytes; data `{"delay","duration","sent"}` (ms, ms, epoch ms). */
export const PROBE_EVENT = 'probe';
/** Event sent just before the probe stream ends, at `duration` ms. */
export const PROBE_END_EVENT = 'probe-end';
/** The comment that opens a probe stream, after the `retry:` line. */
export const PROBE_COMMENT = 'sse-hub probe';
/** Where the probe lives relative to the SSE endpoint's path: `/sse/` → `/sse/_probe`. */
export const PROBE_SEGMENT = '_probe';

export interface ProbeOptions {
  /** Milliseconds between the first bytes and the `probe` event. Defaults to 500. */
  delay?: number;
  /** Milliseconds after which the stream ends; must exceed `delay`. Defaults to 1500. */
  duration?: number;
  /** Probe streams open at once; more are answered 503. Defaults to 16. */
  maxConcurrent?: number;
}

export type ProbeHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * A plain node:http (and Express 4/5) handler serving the probe stream. Mount
 * it next to the SSE endpoint: `app.get('/sse/_probe', sseProbe())`.
 */
export function sseProbe(options: ProbeOptions = {}): ProbeHandler {
  const { delay = 500, duration = 1500, maxConcurrent = 16 } = options;
  positiveInteger('delay', delay, 'ms');
  positiveInteger('duration', duration, 'ms');
  positiveInteger('maxConcurrent', maxConcurrent, 'streams');
  if (duration <= delay) throw new OptionError(`duration must be longer than delay (${delay} ms), got ${duration}`);
  let open = 0;

  return (req, res) => {
    if (req.method !== 'GET') {
      sendJsonError(res, 405, `use GET to open the probe stream, not ${req.method}`, { Allow: 'GET' });
      return;
    }
    if (open >= maxConcurrent) {
      sendJsonError(res, 503, `${maxConcurrent} probes are already running; try again in a few seconds`, {
        'Retry-After': '2',
      });
      return;
    }
    open++;
    writeStreamHead(req, res);
    // The same shape as a stream's preamble (core/frame.ts encodePreamble).
    res.write(`retry: 3000\n: ${PROBE_COMMENT}\n\n`);
    const info = (extra: object): string => JSON.stringify({ delay, duration, ...extra });
    const probe = setTimeout(() => {
      res.write(`event: ${PROBE_EVENT}\ndata: ${info({ sent: Date.now() })}\n\n`);
    }, delay);
    const end = setTimeout(() => {
      res.end(`event: ${PROBE_END_EVENT}\ndata: ${info({ sent: Date.now() })}\n\n`);
    }, duration);
    res.on('error', () => undefined);
    res.once('close', () => {
      open--;
      clearTimeout(probe);
      clearTimeout(end);
    });
  };
}
