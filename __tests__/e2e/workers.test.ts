// sse-runserver --workers: N processes share the port, each with its
// own Redis subscriptions; the memory broker allows one; SIGTERM ends every
// worker's streams and exits 0 within 5 s; /metrics sums the workers and
// /healthz answers for all of them.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { RedisServer } from '../helpers/redis-server';
import { describeWithTools } from '../helpers/require-tool';
import { RUNSERVER, runNode, startRunserver, type RunningServer } from '../helpers/run-cli';
import { SseReader } from '../helpers/sse-reader';
import { waitFor } from '../helpers/wait-for';

function getText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

let server: RunningServer | undefined;
const readers: SseReader[] = [];

afterEach(async () => {
  for (const reader of readers.splice(0)) reader.close();
  // SIGTERM, so the primary takes its workers down with it.
  await server?.stop('SIGTERM');
  server = undefined;
});

describe('sse-runserver --workers with the memory broker', () => {
  test('refuses more than one worker with one line and exit 2', async () => {
    const result = await runNode(RUNSERVER, ['--port', '0', '--workers', '2']);
    expect(result.code).toBe(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/--workers 2 needs the redis broker/);
  });

  test('defaults to one process', async () => {
    server = await startRunserver([]);
    expect(server.output()).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+\/ \(broker: memory\)/);
    expect(server.output()).not.toMatch(/workers:/);
  });

  test('rejects a worker count that is not a positive whole number', async () => {
    const result = await runNode(RUNSERVER, ['--port', '0', '--workers', 'two']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--workers/);
  });
});

describeWithTools(['redis-server'], 'sse-runserver --workers with the redis broker', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => {
    await redis.stop();
  });

  test('two workers share the port, each subscribes, all streams get every event', async () => {
    server = await startRunserver(['--redis', redis.url, '--workers', '2', '--metrics']);
    expect(server.output()).toMatch(/listening on .*\(broker: redis, workers: 2\)/);
    expect(server.output().match(/listening on/g)).toHaveLength(1);

    // Keep opening streams until both workers hold one: cluster hands
    // connections out round-robin, so this takes two or three.
    await waitFor(
      async () => {
        readers.push(await SseReader.open(`${server?.url}/?channels=all`));
        return (await redis.numsub('all')) === 2;
      },
      { timeout: 10_000, what: 'both workers to subscribe to "all"' },
    );
    const metrics = await getText(`${server.url}/metrics`);
    expect(sample(metrics, 'sse_hub_processes')).toBe(2);
    expect(sample(metrics, 'sse_hub_connections')).toBe(readers.length);
    expect(sample(metrics, 'sse_hub_broker_up')).toBe(1);

    await redis.publish('all', '["message", "to every worker"]');
    for (const reader of readers) {
      const [event] = await reader.waitForEvents(1);
      expect(event?.data).toBe('to every worker');
    }
    const after = await getText(`${server.url}/metrics`);
    expect(sample(after, 'sse_hub_events_received_total')).toBe(2); // once per worker
    expect(sample(after, 'sse_hub_frames_written_total')).toBe(readers.length);
  });

  test('SIGTERM ends every worker’s streams and exits 0 within 5 s', async () => {
    server = await startRunserver(['--redis', redis.url, '--workers', '2']);
    await waitFor(
      async () => {
        readers.push(await SseReader.open(`${server?.url}/?channels=bye`));
        return (await redis.numsub('bye')) === 2;
      },
      { timeout: 10_000, what: 'both workers to hold a stream' },
    );
    const started = Date.now();
    const code = await server.stop('SIGTERM');
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    for (const reader of readers) await reader.waitForEnd(1000);
  });

  test('a worker that dies is replaced', async () => {
    server = await startRunserver(['--redis', redis.url, '--workers', '2']);
    const worker = await waitFor(() => childPid(server?.proc.pid), { what: 'a worker pid' });
    process.kill(worker, 'SIGKILL');
    await waitFor(() => /died \(SIGKILL\); starting another/.test(server?.output() ?? ''), {
      what: 'the primary to replace the worker',
    });
    await waitFor(
      async () => {
        readers.push(await SseReader.open(`${server?.url}/?channels=again`));
        return (await redis.numsub('again')) === 2;
      },
      { timeout: 10_000, what: 'two workers again' },
    );
  });
});

/** GET /healthz, or undefined when no answer came within `ms` (a stopped worker holds its requests). */
function health(url: string, ms = 2500): Promise<{ status: number; body: Record<string, unknown> } | undefined> {
  return new Promise((resolve) => {
    const req = http.get(`${url}/healthz`, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) as Record<string, unknown> }));
    });
    req.setTimeout(ms, () => {
      req.destroy();
      resolve(undefined);
    });
    req.on('error', () => resolve(undefined));
  });
}

function publish(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/publish`, { method: 'POST', headers: { 'Content-Type': 'application/json' } });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ channel: 'probe', event: 'message', data: 'x' }));
  });
}

/** Every child pid of `pid` (the cluster workers), from /proc. */
function childPids(pid: number | undefined): number[] {
  if (pid === undefined) return [];
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

describeWithTools(['redis-server'], 'sse-runserver --workers: /healthz answers for the whole server', () => {
  let redis: RedisServer;
  let stopped: number | undefined;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterEach(() => {
    if (stopped !== undefined) process.kill(stopped, 'SIGCONT');
    stopped = undefined;
  });
  afterAll(async () => {
    await redis.stop();
  });

  test('a worker that cannot answer makes every worker’s /healthz 503; 200 again once it is back', async () => {
    server = await startRunserver(['--redis', redis.url, '--workers', '2']);
    const ok = await waitFor(async () => ((await health(server?.url ?? ''))?.status === 200 ? true : undefined), {
      timeout: 10_000,
      what: '/healthz 200',
    });
    expect(ok).toBe(true);
    expect((await health(server.url))?.body).toEqual({ ok: true, broker: 'redis', workers: 2 });

    const workers = childPids(server.proc.pid);
    expect(workers).toHaveLength(2);
    stopped = workers[0] as number;
    process.kill(stopped, 'SIGSTOP');
    // Requests the stopped worker took stay unanswered; every answer, from the
    // other worker, must be 503 and name the silent one.
    const answers: { status: number; body: Record<string, unknown> }[] = [];
    await waitFor(
      async () => {
        const answer = await health(server?.url ?? '');
        if (answer !== undefined) answers.push(answer);
        return answers.length >= 3;
      },
      { timeout: 20_000, what: 'three answers from the running worker' },
    );
    for (const answer of answers) {
      expect(answer.status).toBe(503);
      expect(String(answer.body.error)).toContain(`worker ${stopped} did not answer`);
    }
    process.kill(stopped, 'SIGCONT');
    stopped = undefined;
    await waitFor(async () => (await health(server?.url ?? ''))?.status === 200, {
      timeout: 10_000,
      what: '/healthz 200 again',
    });
  });

  test('after a Redis restart, the first 200 means every worker can publish again', async () => {
    server = await startRunserver(['--redis', redis.url, '--workers', '2']);
    await waitFor(async () => (await health(server?.url ?? ''))?.status === 200, { timeout: 10_000, what: '200' });
    await redis.stop();
    await waitFor(async () => (await health(server?.url ?? ''))?.status === 503, { timeout: 10_000, what: '503' });
    await redis.restart();
    await waitFor(async () => (await health(server?.url ?? ''))?.status === 200, {
      interval: 5,
      timeout: 15_000,
      what: '200 after the restart',
    });
    // Cluster hands requests to the workers in turn: 10 publishes reach both.
    const statuses = [];
    for (let i = 0; i < 10; i++) statuses.push(await publish(server.url));
    expect(statuses).toEqual(Array(10).fill(202));
  });
});

/** The first child of `pid` (a cluster worker), from /proc. */
function childPid(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const first = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0];
    return first ? Number(first) : undefined;
  } catch {
    return undefined;
  }
}
