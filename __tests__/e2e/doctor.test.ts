// `sse-runserver --doctor URL` and the `_probe` stream, run as
// users run them: the built bin against a real sse-runserver behind real
// nginx, with a location that buffers (proxy_buffering on and the
// X-Accel-Buffering header ignored), one that gzips text/event-stream, and
// the clean block of docs/deployment.md. One line out; exit 0 clean, 1 problem, 2 bad usage.
import { probeUrlFor } from '../../src/cli/doctor';
import { UsageError } from '../../src/core/errors';
import { OptionError, sseProbe } from '../../src/index';
import { Nginx, NGINX_PATH } from '../helpers/nginx';
import { describeWithTools } from '../helpers/require-tool';
import { runNode, RUNSERVER, startRunserver, type RunningServer } from '../helpers/run-cli';
import { SseReader } from '../helpers/sse-reader';

const doctor = (url: string) => runNode(RUNSERVER, ['--doctor', url]);

function oneLine(text: string): string {
  const lines = text.split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(1);
  return lines[0] as string;
}

describe('where --doctor looks for the probe', () => {
  test.each([
    ['https://example.com/sse/?channels=all', 'https://example.com/sse/_probe'],
    ['https://example.com/events?channels=a,b#x', 'https://example.com/events/_probe'],
    ['http://127.0.0.1:8888/', 'http://127.0.0.1:8888/_probe'],
    ['http://127.0.0.1:8888', 'http://127.0.0.1:8888/_probe'],
    ['https://example.com/sse/_probe', 'https://example.com/sse/_probe'],
  ])('%s → %s', (input, probe) => {
    expect(probeUrlFor(input).href).toBe(probe);
  });

  test('anything but an http(s) URL is a usage error', () => {
    expect(() => probeUrlFor('example.com/sse/')).toThrow(UsageError);
    expect(() => probeUrlFor('ws://example.com/sse/')).toThrow(/needs an http:\/\/ or https:\/\/ URL/);
  });

  test('sseProbe() options are checked when it is created', () => {
    expect(() => sseProbe({ delay: 0 })).toThrow(OptionError);
    expect(() => sseProbe({ delay: 500, duration: 400 })).toThrow(/duration must be longer than delay/);
  });
});

describe('sse-runserver --doctor: usage', () => {
  test.each([['not a url'], ['ftp://example.com/sse/'], ['']])('"%s" → exit 2 and one line on stderr', async (url) => {
    const result = await doctor(url);
    expect(result.code).toBe(2);
    expect(oneLine(result.stderr)).toMatch(/^sse-runserver: error: --doctor needs .*URL/);
    expect(result.stdout).toBe('');
  });

  test('nothing listening → exit 1, one line naming the probe URL', async () => {
    const result = await doctor('http://127.0.0.1:1/sse/?channels=all');
    expect(result.code).toBe(1);
    expect(oneLine(result.stdout)).toMatch(
      /^problem: cannot read http:\/\/127\.0\.0\.1:1\/sse\/_probe: .*ECONNREFUSED/,
    );
  });
});

describe('the _probe stream of sse-runserver', () => {
  let server: RunningServer | undefined;
  const readers: SseReader[] = [];
  beforeAll(async () => {
    server = await startRunserver(['--path', '/sse/']);
  });
  afterEach(() => readers.splice(0).forEach((r) => r.close()));
  afterAll(async () => {
    await server?.stop();
  });

  test('has the headers of a real stream, then a probe event, then probe-end, then ends', async () => {
    const stream = await SseReader.open(`${server!.url}/sse/?channels=all`);
    const probe = await SseReader.open(`${server!.url}/sse/_probe`);
    readers.push(stream, probe);
    expect(probe.status).toBe(200);
    for (const header of ['content-type', 'cache-control', 'x-accel-buffering', 'connection']) {
      expect([header, probe.headers[header]]).toEqual([header, stream.headers[header]]);
    }
    await probe.waitForEnd(5000);
    expect(probe.comments).toContain('sse-hub probe');
    expect(probe.events.map((e) => e.event)).toEqual(['probe', 'probe-end']);
    expect(JSON.parse(probe.events[0]!.data)).toMatchObject({ delay: 500, duration: 1500 });
  });

  test('the doctor straight at sse-runserver: exit 0, one ok line with the first-byte time', async () => {
    const result = await doctor(`${server!.url}/sse/?channels=all`);
    expect(result.code).toBe(0);
    expect(oneLine(result.stdout)).toMatch(
      /^ok: http:\/\/127\.0\.0\.1:\d+\/sse\/_probe streams unbuffered and uncompressed: first byte after \d+ ms/,
    );
  });

  test('a URL that is not a probe (the stream path of another server) → exit 1 saying so', async () => {
    const result = await doctor(`${server!.url}/elsewhere/`);
    expect(result.code).toBe(1);
    expect(oneLine(result.stdout)).toMatch(/^problem: .*\/elsewhere\/_probe answered 404, not the probe stream/);
  });
});

describeWithTools([NGINX_PATH], 'sse-runserver --doctor through nginx', () => {
  let server: RunningServer | undefined;
  let nginx: Nginx | undefined;

  beforeAll(async () => {
    server = await startRunserver(['--path', '/sse/']);
    const upstream = `http://127.0.0.1:${server.port}`;
    nginx = await Nginx.start(`
      # proxy_buffering on (nginx's default), and the header that turns it off per response ignored
      location /buffered/sse/ { proxy_pass ${upstream}/sse/; proxy_buffering on; proxy_ignore_headers X-Accel-Buffering; }
      # gzip for event streams; the header is honoured, so only compression is wrong here
      location /gzip/sse/ { proxy_pass ${upstream}/sse/; gzip on; gzip_types text/event-stream; }
      # the block of docs/deployment.md
      location /sse/ {
        proxy_pass ${upstream};
        proxy_buffering off;
        proxy_http_version 1.1;
        proxy_set_header Connection '';
      }
    `);
  });
  afterAll(async () => {
    await nginx?.stop();
    await server?.stop();
  });

  test('a buffering location → exit 1: "nginx buffers the stream", fix: proxy_buffering off / X-Accel-Buffering', async () => {
    const result = await doctor(`${nginx!.url}/buffered/sse/?channels=all`);
    expect(result.code).toBe(1);
    const line = oneLine(result.stdout);
    expect(line).toMatch(/^problem: nginx buffers the stream \(the probe event .* arrived only with the end/);
    expect(line).toContain('`proxy_buffering off;`');
    expect(line).toContain('X-Accel-Buffering');
    expect(line).not.toMatch(/compress/);
  });

  test('a gzip location → exit 1: "nginx compresses the stream", fix: gzip off / gzip_types', async () => {
    const result = await doctor(`${nginx!.url}/gzip/sse/?channels=all`);
    expect(result.code).toBe(1);
    const line = oneLine(result.stdout);
    expect(line).toMatch(/^problem: nginx compresses the stream \(Content-Encoding: gzip\): add `gzip off;`/);
    expect(line).toContain('gzip_types');
    expect(line).not.toMatch(/buffers/);
  });

  test('the docs/deployment.md block → exit 0', async () => {
    const result = await doctor(`${nginx!.url}/sse/?channels=all`);
    expect(result.code).toBe(0);
    expect(oneLine(result.stdout)).toMatch(/^ok: .*\/sse\/_probe streams unbuffered and uncompressed/);
  });

  test('a --doctor URL that names the probe itself is used as is', async () => {
    const result = await doctor(`${nginx!.url}/buffered/sse/_probe`);
    expect(result.code).toBe(1);
    expect(oneLine(result.stdout)).toMatch(/^problem: nginx buffers the stream/);
  });

  test('a path nginx does not proxy → exit 1 naming the 404', async () => {
    const result = await doctor(`${nginx!.url}/nowhere/`);
    expect(result.code).toBe(1);
    expect(oneLine(result.stdout)).toMatch(/answered 404, not the probe stream/);
  });
});
