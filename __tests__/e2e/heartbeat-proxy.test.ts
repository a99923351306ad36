// docs/guarantees.md, docs/protocol.md heartbeats: the `: ping` comments keep an
// idle stream open through nginx with a proxy_read_timeout shorter than the
// idle time — scaled down (1 s timeout, 300 ms heartbeat) so it runs fast.
// The control case (heartbeat longer than the timeout) shows nginx does cut.
import { NGINX_PATH, startNginx, type RunningNginx } from '../helpers/nginx';
import { describeWithTools } from '../helpers/require-tool';
import { startRunserver, type RunningServer } from '../helpers/run-cli';
import { SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

const READ_TIMEOUT_S = 1;

describeWithTools([NGINX_PATH], 'heartbeats through nginx', () => {
  const running: (RunningServer | RunningNginx | SseReader)[] = [];
  afterEach(async () => {
    for (const thing of running.splice(0).reverse()) {
      if (thing instanceof SseReader) thing.close();
      else await thing.stop();
    }
  });

  async function proxied(heartbeatMs: number): Promise<{ server: RunningServer; nginx: RunningNginx }> {
    const server = await startRunserver(['--heartbeat', String(heartbeatMs)]);
    running.push(server);
    const nginx = await startNginx(`
      location /sse/ {
        proxy_pass http://127.0.0.1:${server.port}/;
        proxy_buffering off;
        proxy_http_version 1.1;
        proxy_set_header Connection '';
        proxy_read_timeout ${READ_TIMEOUT_S}s;
      }`);
    running.push(nginx);
    return { server, nginx };
  }

  test('an idle stream with a 300 ms heartbeat outlives a 1 s proxy_read_timeout and still gets events', async () => {
    const { server, nginx } = await proxied(300);
    const reader = await SseReader.open(`${nginx.url}/sse/?channels=idle`);
    running.push(reader);
    expect(reader.status).toBe(200);
    // Idle for 3.5 × the timeout: the pings keep it open.
    const openedAt = Date.now();
    await waitFor(() => reader.ended || Date.now() - openedAt > 3500 * READ_TIMEOUT_S, { timeout: 10_000 });
    expect(reader.ended).toBe(false);
    expect(reader.comments.filter((c) => c === 'ping').length).toBeGreaterThanOrEqual(5);
    const res = await fetch(`${server.url}/publish`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ channel: 'idle', event: 'wake', data: 'still here' }),
    });
    expect(res.status).toBe(202);
    expect((await reader.waitForEvents(1))[0]).toEqual({ event: 'wake', data: 'still here' });
  });

  test('control: with a heartbeat longer than the timeout, nginx cuts the idle stream', async () => {
    const { nginx } = await proxied(10_000);
    const reader = await SseReader.open(`${nginx.url}/sse/?channels=idle`);
    running.push(reader);
    expect(reader.status).toBe(200);
    const openedAt = Date.now();
    await reader.waitForClose(5000);
    expect(reader.endedBy).toBe('reset'); // nginx gives up mid-body: no final chunk
    expect(Date.now() - openedAt).toBeGreaterThanOrEqual(READ_TIMEOUT_S * 1000 - 100);
  });
});
