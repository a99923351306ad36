// `sse-runserver --doctor URL` (docs/deployment.md#sse-runserver---doctor-url): reads the probe stream (http/probe.ts)
// through the public URL, as a browser would (Accept-Encoding: gzip, deflate,
// br), and says in ONE line whether something in between buffers or
// compresses the stream, and which setting fixes it. Only relative times on
// this machine's clock are compared, so the server's clock may differ.
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import zlib from 'node:zlib';
import { UsageError } from '../core/errors.js';
import { redactUrls } from '../core/redact.js';
import { PROBE_COMMENT, PROBE_END_EVENT, PROBE_EVENT, PROBE_SEGMENT } from '../http/probe.js';

export interface DoctorTimings {
  /** ms from the request to the response headers. */
  headers: number;
  /** ms from the request to the first body byte. */
  firstByte: number;
  /** ms from the request to the `probe` event (decoded, as a page sees it). */
  probe: number;
  /** ms from the request to the end of the stream. */
  end: number;
  /** How late the probe event was: its arrival minus (first byte + the probe's delay), ms. */
  probeLatency: number;
}

export interface DoctorReport {
  /** 0: clean; 1: a problem was found (buffering, compression, unreachable, not the probe). */
  code: 0 | 1;
  /** The one line to print. */
  line: string;
  buffered: boolean;
  /** The Content-Encoding the stream arrived with, if any. */
  compressed: string | undefined;
  timings: DoctorTimings | undefined;
}

export interface DoctorOptions {
  /** Gives up after this many ms. Defaults to 10000. */
  timeout?: number;
}

/**
 * The probe's URL for a public SSE URL: a URL whose path ends in `/_probe` is
 * used as is; otherwise `_probe` is appended to its path (with a `/` between)
 * and the query is dropped: `https://example.com/sse/?channels=all` →
 * `https://example.com/sse/_probe`.
 */
export function probeUrlFor(input: string): URL {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new UsageError(`--doctor needs the stream's public URL, e.g. https://example.com/sse/, got "${input}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--doctor needs an http:// or https:// URL, got "${input}"`);
  }
  url.hash = '';
  if (url.pathname.endsWith(`/${PROBE_SEGMENT}`)) return url;
  url.pathname = `${url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`}${PROBE_SEGMENT}`;
  url.search = '';
  return url;
}

interface Observation {
  status: number;
  headers: http.IncomingHttpHeaders;
  sawProbeComment: boolean;
  probeInfo: { delay: number; duration: number } | undefined;
  at: { headers: number; firstByte?: number; probe?: number; probeEnd?: number; end?: number };
}

/** Reads the probe at `probeUrl` and judges the path between here and sse-hub. */
export async function doctor(probeUrl: URL, options: DoctorOptions = {}): Promise<DoctorReport> {
  const timeout = options.timeout ?? 10_000;
  let seen: Observation;
  try {
    seen = await observe(probeUrl, timeout);
  } catch (err) {
    return problem(`cannot read ${probeUrl.href}: ${(err as Error).message}`);
  }
  // user:pass@ in the URL is used for the request, never echoed.
  const where = redactUrls(probeUrl.href);
  if (seen.status !== 200) {
    return problem(
      `${where} answered ${seen.status}, not the probe stream: sse-runserver serves it at <its --path>${PROBE_SEGMENT}; in an Express app mount sseProbe() there (app.get('/sse/${PROBE_SEGMENT}', sseProbe())), and let the proxy pass that path`,
    );
  }
  const type = String(seen.headers['content-type'] ?? '');
  if (!type.startsWith('text/event-stream')) {
    return problem(`${where} answered Content-Type "${type}", not text/event-stream: it is not sse-hub's probe stream`);
  }
  const { at, probeInfo } = seen;
  if (!seen.sawProbeComment || probeInfo === undefined || at.probe === undefined || at.firstByte === undefined) {
    const why = at.end === undefined ? `no probe event within ${timeout} ms` : 'the stream ended without a probe event';
    return problem(
      `${where} is an event stream but not sse-hub's probe (${why}): point --doctor at the sse-hub stream`,
    );
  }
  const end = at.end ?? at.probeEnd ?? performance.now();
  const timings: DoctorTimings = {
    headers: round(at.headers),
    firstByte: round(at.firstByte),
    probe: round(at.probe),
    end: round(end),
    probeLatency: round(at.probe - at.firstByte - probeInfo.delay),
  };
  // Written at 0, delay and duration ms: a buffering hop delivers the probe
  // event together with the end, or holds the first bytes back.
  const tail = probeInfo.duration - probeInfo.delay;
  const buffered = end - at.probe < tail / 2 || at.firstByte - at.headers > probeInfo.delay / 2;
  const encoding = seen.headers['content-encoding'];
  const compressed = encoding !== undefined && encoding !== 'identity' ? encoding : undefined;
  const nginx = /nginx/i.test(String(seen.headers.server ?? ''));

  const findings: string[] = [];
  if (buffered) {
    const what =
      end - at.probe < tail / 2
        ? `the probe event sent ${probeInfo.delay} ms after the first bytes arrived only with the end of the stream, ${Math.round(at.probe)} ms after the request`
        : `the first bytes arrived ${Math.round(at.firstByte - at.headers)} ms after the headers`;
    findings.push(
      nginx
        ? `nginx buffers the stream (${what}): add \`proxy_buffering off;\` to the location, or let X-Accel-Buffering through (remove \`proxy_ignore_headers X-Accel-Buffering;\`)`
        : `a proxy between here and sse-hub buffers the stream (${what}): turn response buffering off for text/event-stream on it`,
    );
  }
  if (compressed !== undefined) {
    findings.push(
      nginx
        ? `nginx compresses the stream (Content-Encoding: ${compressed}): add \`gzip off;\` to the location, or take text/event-stream out of gzip_types`
        : `the stream is ${compressed}-compressed on its way (Content-Encoding: ${compressed}) by a proxy or a compression middleware: turn compression off for text/event-stream`,
    );
  }
  if (findings.length > 0)
    return { code: 1, line: `problem: ${findings.join('; and ')}`, buffered, compressed, timings };
  return {
    code: 0,
    line: `ok: ${where} streams unbuffered and uncompressed: first byte after ${Math.round(timings.firstByte)} ms, probe event ${Math.max(0, Math.round(timings.probeLatency))} ms after it was sent`,
    buffered,
    compressed,
    timings,
  };
}

function problem(line: string): DoctorReport {
  return { code: 1, line: redactUrls(`problem: ${line}`), buffered: false, compressed: undefined, timings: undefined };
}

const round = (ms: number): number => Math.round(ms * 10) / 10;

function observe(url: URL, timeout: number): Promise<Observation> {
  const get = url.protocol === 'https:' ? https.get : http.get;
  const start = performance.now();
  const since = (): number => performance.now() - start;
  return new Promise((resolve, reject) => {
    let seen: Observation | undefined;
    const req = get(
      url,
      {
        headers: {
          Accept: 'text/event-stream',
          'Accept-Encoding': 'gzip, deflate, br',
          'Cache-Control': 'no-cache',
          'User-Agent': 'sse-runserver --doctor',
        },
      },
      (res) => {
        const observation: Observation = {
          status: res.statusCode ?? 0,
          headers: res.headers,
          sawProbeComment: false,
          probeInfo: undefined,
          at: { headers: since() },
        };
        seen = observation;
        res.once('data', () => (observation.at.firstByte ??= since()));
        const decoded = decoder(res.headers['content-encoding']);
        const text = decoded === undefined ? res : res.pipe(decoded);
        let buffer = '';
        let event: string | undefined;
        let data = '';
        text.on('data', (chunk: Buffer) => {
          buffer += chunk.toString('utf8');
          const lines = buffer.split(/\r\n|\r|\n/);
          buffer = lines.pop() ?? '';
          for (const line of lines) {
            if (line === `: ${PROBE_COMMENT}`) observation.sawProbeComment = true;
            else if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trim();
            else if (line === '') {
              if (event === PROBE_EVENT && observation.at.probe === undefined) {
                observation.at.probe = since();
                observation.probeInfo = parseInfo(data);
              } else if (event === PROBE_END_EVENT) observation.at.probeEnd ??= since();
              event = undefined;
              data = '';
            }
          }
        });
        const done = (): void => {
          observation.at.end ??= since();
          finish();
        };
        text.on('end', done);
        text.on('error', done);
        // A complete response ends `text` (also through the decoder); a cut one ends here.
        res.on('close', () => {
          if (!res.complete) done();
        });
      },
    );
    const timer = setTimeout(() => {
      if (seen === undefined) fail(new Error(`no answer within ${timeout} ms`));
      else finish();
    }, timeout);
    req.on('error', (err) => (seen === undefined ? fail(err) : finish()));

    let settled = false;
    function finish(): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(seen as Observation);
    }
    function fail(err: Error): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(err);
    }
  });
}

function decoder(encoding: string | string[] | undefined): NodeJS.ReadWriteStream | undefined {
  // Sync flushes so a cut-off stream still yields what arrived.
  const flush = { flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH };
  switch (String(encoding ?? '').trim()) {
    case 'gzip':
    case 'x-gzip':
      return zlib.createGunzip(flush);
    case 'deflate':
      return zlib.createInflate(flush);
    case 'br':
      return zlib.createBrotliDecompress();
    default:
      return undefined;
  }
}

function parseInfo(data: string): { delay: number; duration: number } | undefined {
  try {
    const info = JSON.parse(data) as { delay?: unknown; duration?: unknown };
    return typeof info.delay === 'number' && typeof info.duration === 'number'
      ? { delay: info.delay, duration: info.duration }
      : undefined;
  } catch {
    return undefined;
  }
}
