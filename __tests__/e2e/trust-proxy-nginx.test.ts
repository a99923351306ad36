// --trust-proxy behind a real nginx that appends the client to
// X-Forwarded-For ($proxy_add_x_forwarded_for). Clients connect to nginx from
// distinct loopback addresses (127.0.0.2, 127.0.0.3: all of 127/8 is local on
// Linux), nginx connects to sse-runserver from 127.0.0.1. With nginx trusted,
// the per-address cap counts each client, and what a client writes in its own
// X-Forwarded-For is not believed; without it, every stream is nginx's.
import http from 'node:http';
import { startNginx, NGINX_PATH, type RunningNginx } from '../helpers/nginx';
import { describeWithTools } from '../helpers/require-tool';
import { startRunserver, type RunningServer } from '../helpers/run-cli';
import { waitFor } from '../helpers/wait-for';

interface Stream {
  status: number;
  body: string;
  ended: boolean;
  close(): void;
}

/** Opens a stream through nginx from the loopback address `from`. */
function open(url: string, from: string, headers: Record<string, string> = {}): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { localAddress: from, headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
      const stream: Stream = { status: res.statusCode ?? 0, body: '', ended: false, close: () => req.destroy() };
      res.setEncoding('utf8');
      res.on('data', (c: string) => (stream.body += c));
      res.on('end', () => (stream.ended = true));
      resolve(stream);
    });
    req.on('error', reject);
  });
}

describeWithTools([NGINX_PATH], 'sse-runserver --trust-proxy behind nginx', () => {
  let server: RunningServer | undefined;
  let nginx: RunningNginx | undefined;
  const streams: Stream[] = [];

  afterEach(async () => {
    for (const s of streams.splice(0)) s.close();
    await nginx?.stop();
    nginx = undefined;
    await server?.stop();
    server = undefined;
  });

  async function start(args: string[]): Promise<string> {
    server = await startRunserver(['--max-connections-per-ip', '1', '--metrics', '--retry', '1000', ...args]);
    nginx = await startNginx(`location / {
      proxy_pass ${server.url};
      proxy_http_version 1.1;
      proxy_set_header Connection '';
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }`);
    return `${nginx.url}/?channels=all`;
  }

  async function through(url: string, from: string, headers?: Record<string, string>): Promise<Stream> {
    const stream = await open(url, from, headers);
    streams.push(stream);
    expect(stream.status).toBe(200);
    return stream;
  }

  const sample = async (name: string): Promise<number> => {
    const text = await (await fetch(`${server!.url}/metrics`)).text();
    return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1]);
  };
  const refusedPerIp = () => sample('sse_hub_streams_refused_total\\{reason="max-connections-per-ip"\\}');
  const refused = async (stream: Stream): Promise<void> => {
    await waitFor(() => stream.ended, { what: 'the refused stream to end' });
    expect(stream.body).toMatch(/^retry: \d+\n/);
  };

  test('regression: trusting nginx, each client gets its own cap; a spoofed X-Forwarded-For does not help', async () => {
    const url = await start(['--trust-proxy', '127.0.0.1']);
    await through(url, '127.0.0.2');
    await through(url, '127.0.0.3');
    await waitFor(async () => (await sample('sse_hub_connections')) === 2, { what: 'two clients streaming' });
    // 127.0.0.2 again, claiming to be someone else: nginx appends its real address.
    await refused(await through(url, '127.0.0.2', { 'X-Forwarded-For': '198.51.100.7' }));
    expect(await refusedPerIp()).toBe(1);
    expect(await sample('sse_hub_connections')).toBe(2);
  });

  test('without --trust-proxy every stream is counted as nginx, whoever sent it', async () => {
    const url = await start([]);
    await through(url, '127.0.0.2');
    await refused(await through(url, '127.0.0.3'));
    expect(await refusedPerIp()).toBe(1);
  });
});
