// sse_hub_refusals_total{kind}: the admin dashboard's refusal totals in
// /metrics. The one series that counts 401s and 403s of every endpoint — a
// stream, /channels, the dashboard's API — so that someone guessing the
// admin token, or a page of another site driving the API, shows on a graph.
import http from 'node:http';
import { createServer, type SseServer } from '../../src/cli/server';
import { SseReader } from '../helpers/sse-reader';

let sse: SseServer | undefined;
const readers: SseReader[] = [];

afterEach(async () => {
  for (const r of readers.splice(0)) r.close();
  await sse?.close();
  sse = undefined;
});

async function refusalSamples(base: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const samples: Record<string, number> = {};
  for (const match of text.matchAll(/^sse_hub_refusals_total\{kind="([^"]+)"\} (\d+)$/gm)) {
    samples[match[1] as string] = Number(match[2]);
  }
  return samples;
}

function get(base: string, path: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(`${base}${path}`, { headers }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

test('regression: 401s and 403s of /channels and the admin API, and stream caps, are counted by kind', async () => {
  sse = createServer({
    hubOptions: { broker: 'memory', maxConnections: 1, retry: 1000 },
    metrics: true,
    admin: true,
    adminToken: 'an-admin-token',
  });
  const base = `http://127.0.0.1:${(await sse.listen(0)).port}`;
  expect(await refusalSamples(base)).toEqual({
    'slow-client': 0,
    cap: 0,
    unauthorized: 0,
    forbidden: 0,
    'session-store': 0,
  });

  expect(await get(base, '/channels', { Authorization: 'Bearer guess-1' })).toBe(401);
  expect(await get(base, '/_admin/api/stats', { Authorization: 'Bearer guess-2' })).toBe(401);
  readers.push(await SseReader.open(`${base}/?channels=all`));
  const refused = await SseReader.open(`${base}/?channels=all`);
  readers.push(refused);
  await refused.waitForEnd();

  const samples = await refusalSamples(base);
  expect(samples).toMatchObject({ unauthorized: 2, cap: 1, forbidden: 0 });
  // The same figures the dashboard shows.
  const stats = await fetch(`${base}/_admin/api/stats`, { headers: { Authorization: 'Bearer an-admin-token' } });
  expect(((await stats.json()) as { refusalTotals: Record<string, number> }).refusalTotals).toEqual({
    unauthorized: 2,
    cap: 1,
  });
});

test('a 403 of the admin API without a token (another site) is counted as forbidden', async () => {
  sse = createServer({ hubOptions: { broker: 'memory' }, metrics: true, admin: true });
  const base = `http://127.0.0.1:${(await sse.listen(0)).port}`;
  expect(await get(base, '/_admin/api/stats', { 'Sec-Fetch-Site': 'cross-site' })).toBe(403);
  expect(await get(base, '/channels', { Origin: 'http://evil.example' })).toBe(403);
  expect((await refusalSamples(base)).forbidden).toBe(2);
});
