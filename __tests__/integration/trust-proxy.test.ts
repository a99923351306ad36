// sse-runserver --trust-proxy: behind a reverse proxy every stream comes from
// the proxy's address, so the per-address cap must count the client the proxy
// names in X-Forwarded-For — but only hops written by a trusted proxy (the
// rightmost untrusted address, as Express's `trust proxy`), and without the
// flag, never the header: any client can send one.
import { createServer, type SseServer } from '../../src/cli/server';
import { RUNSERVER, runNode, startRunserver, type RunningServer } from '../helpers/run-cli';
import { SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

const readers: SseReader[] = [];
let sse: SseServer | undefined;
let cli: RunningServer | undefined;

afterEach(async () => {
  for (const r of readers.splice(0)) r.close();
  await sse?.close();
  sse = undefined;
  await cli?.stop();
  cli = undefined;
});

/** Opens a stream from loopback (the "proxy") with the X-Forwarded-For it would send; none when undefined. */
async function from(base: string, forwardedFor?: string): Promise<SseReader> {
  const headers: Record<string, string> = forwardedFor === undefined ? {} : { 'X-Forwarded-For': forwardedFor };
  const reader = await SseReader.open(`${base}/?channels=all`, headers);
  readers.push(reader);
  return reader;
}

/** A stream over a cap: 200, `retry:`, no events, ended. */
async function expectRefused(reader: SseReader): Promise<void> {
  expect(reader.status).toBe(200);
  await reader.waitForEnd();
  expect(reader.retry).toBeGreaterThanOrEqual(1000);
  expect(reader.events).toEqual([]);
}

async function serve(trustProxy?: string[]): Promise<string> {
  sse = createServer({ hubOptions: { broker: 'memory', maxConnectionsPerIp: 1, retry: 1000 }, trustProxy });
  return `http://127.0.0.1:${(await sse.listen(0)).port}`;
}

const open = (n: number) => waitFor(() => sse?.hub.stats().connections === n, { what: `${n} open streams` });

describe('without --trust-proxy', () => {
  test('regression: X-Forwarded-For is ignored; the cap counts the socket address', async () => {
    const base = await serve();
    await from(base, '203.0.113.1');
    await open(1);
    // Another "client" by its header, but the same socket address: refused.
    await expectRefused(await from(base, '203.0.113.2'));
    expect(sse?.hub.refusals.recent()[0]?.detail).toMatch(/from 127\.0\.0\.1: max-connections-per-ip$/);
  });
});

describe('with --trust-proxy', () => {
  test('regression: loopback trusted — each forwarded client has its own cap', async () => {
    const base = await serve(['loopback']);
    await from(base, '203.0.113.1');
    await from(base, '203.0.113.2');
    await open(2);
    await expectRefused(await from(base, '203.0.113.1'));
    expect(sse?.hub.refusals.recent()[0]?.detail).toMatch(/from 203\.0\.113\.1: max-connections-per-ip$/);
    // A request the proxy did not forward counts as the proxy itself.
    await from(base);
    await open(3);
  });

  test('a client cannot choose its address: hops left of the rightmost untrusted one are not believed', async () => {
    const base = await serve(['loopback']);
    await from(base, '203.0.113.1');
    await open(1);
    // The client sent "X-Forwarded-For: 198.51.100.99"; the proxy appended the address it saw.
    await expectRefused(await from(base, '198.51.100.99, 203.0.113.1'));
    expect(sse?.hub.stats().connections).toBe(1);
  });

  test('a chain of trusted proxies is walked past; an untrusted socket makes the header count for nothing', async () => {
    const base = await serve(['loopback', '10.0.0.0/8']);
    await from(base, '203.0.113.5, 10.1.2.3');
    await from(base, '203.0.113.6, 10.1.2.3');
    await open(2);
    await expectRefused(await from(base, '203.0.113.5, 10.9.9.9'));
    await sse?.close();

    // Trusting only another proxy: this socket (loopback) is the client.
    const other = await serve(['10.0.0.1']);
    await from(other, '203.0.113.1');
    await open(1);
    await expectRefused(await from(other, '203.0.113.2'));
  });

  test('an address that is not one is an OptionError before any broker is opened', () => {
    expect(() => createServer({ hubOptions: { broker: 'memory' }, trustProxy: ['proxy.example'] })).toThrow(
      /trustProxy: invalid IP address: proxy\.example/,
    );
    expect(() => createServer({ hubOptions: { broker: 'memory' }, trustProxy: [] })).toThrow(/at least one/);
  });
});

describe('sse-runserver --trust-proxy / SSE_TRUST_PROXY', () => {
  const refusedPerIp = async (base: string): Promise<number> => {
    const text = await (await fetch(`${base}/metrics`)).text();
    const line = text
      .split('\n')
      .find((l) => l.startsWith('sse_hub_streams_refused_total{reason="max-connections-per-ip"} '));
    return Number(line?.split(' ').pop());
  };

  test.each([
    ['the flag', ['--trust-proxy', '127.0.0.1,10.0.0.0/8'], {}],
    ['the environment', [], { SSE_TRUST_PROXY: 'loopback' }],
  ])('%s: forwarded clients are capped one by one, and counted', async (_, args, env) => {
    cli = await startRunserver(['--max-connections-per-ip', '1', '--metrics', '--retry', '1000', ...args], env);
    const base = cli.url;
    const first = await from(base, '203.0.113.1');
    const second = await from(base, '203.0.113.2');
    await expectRefused(await from(base, '203.0.113.1'));
    expect(await refusedPerIp(base)).toBe(1);
    // The two admitted ones are open streams.
    expect(first.ended).toBe(false);
    expect(second.ended).toBe(false);
  });

  test('without it, the same requests share the socket address', async () => {
    cli = await startRunserver(['--max-connections-per-ip', '1', '--metrics', '--retry', '1000']);
    await from(cli.url, '203.0.113.1');
    await expectRefused(await from(cli.url, '203.0.113.2'));
    expect(await refusedPerIp(cli.url)).toBe(1);
  });

  test('a value that is not an address exits 2 with one line', async () => {
    const result = await runNode(RUNSERVER, ['--port', '0', '--trust-proxy', 'loopback,proxy.example']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--trust-proxy: invalid IP address: proxy\.example/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});
