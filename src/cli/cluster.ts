// sse-runserver --workers N: N processes share the port through node:cluster,
// each with its own hub and broker subscriptions. Invariants: only the Redis
// broker may have more than one worker (the memory broker would split the
// subscribers into islands that never see each other's events); the primary
// prints the one "listening" line once every worker listens, and on SIGTERM
// it waits for every worker to end its streams before exiting 0. /metrics and
// /healthz answer for the whole server: a worker asks the primary, which
// gathers every listening worker's figures or health over IPC.
import cluster, { type Worker } from 'node:cluster';
import os from 'node:os';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Logger } from '../core/logger.js';
import type { HealthReport, HealthSource } from '../http/health.js';
import type { MetricsSource } from '../http/metrics.js';

/** How long the primary waits for its workers after SIGTERM, in ms (workers give up at 4 s). */
const PRIMARY_GRACE = 4500;

const LISTENING = 'sse-hub:listening';
const METRICS_REQUEST = 'sse-hub:metrics-request';
const METRICS_REPLY = 'sse-hub:metrics-reply';
const HEALTH_REQUEST = 'sse-hub:health-request';
const HEALTH_QUERY = 'sse-hub:health-query';
const HEALTH_STATE = 'sse-hub:health-state';
const HEALTH_REPLY = 'sse-hub:health-reply';

/**
 * How long the primary waits for each worker's health, in ms. A worker that
 * does not answer in time (stopped, stuck in a long loop) counts as down: it
 * could not serve a publish either.
 */
const HEALTH_QUERY_TIMEOUT = 1000;

interface ListeningMessage {
  type: typeof LISTENING;
  url: string;
  broker: string;
}
interface MetricsRequest {
  type: typeof METRICS_REQUEST;
  id: number;
}
interface MetricsReply {
  type: typeof METRICS_REPLY;
  id: number;
  text?: string;
  error?: string;
}

interface HealthRequest {
  type: typeof HEALTH_REQUEST;
  id: number;
}
interface HealthQuery {
  type: typeof HEALTH_QUERY;
  id: number;
}
interface HealthState {
  type: typeof HEALTH_STATE;
  id: number;
  report: HealthReport;
}
interface HealthReply {
  type: typeof HEALTH_REPLY;
  id: number;
  report: HealthReport;
}

type WorkerMessage = ListeningMessage | MetricsRequest | HealthRequest | HealthState;

/**
 * The number of workers: the flag when given, else one per core with Redis and
 * 1 with the memory broker. Returns an error message when the flag asks for
 * more than one worker on the memory broker.
 */
export function resolveWorkers(flag: number | undefined, redis: boolean): number | string {
  if (!redis) {
    if (flag !== undefined && flag > 1) {
      return `--workers ${flag} needs the redis broker (--redis URL or REDIS_URL): with the in-memory broker each worker would only see its own events`;
    }
    return 1;
  }
  return flag ?? Math.max(1, os.availableParallelism());
}

export const isWorker = (): boolean => cluster.isWorker;

/**
 * Runs the cluster primary: forks `workers` copies of this command, logs
 * "listening on <url> (workers: N)" once all listen, re-forks a worker that
 * crashes, answers workers' metrics requests with the aggregate, and on
 * SIGINT/SIGTERM stops every worker and exits 0.
 */
export function runPrimary(
  workers: number,
  logger: Logger,
  fail: (message: string, code: number) => never,
  drainTime = 0,
): void {
  const aggregator = new AggregatorRegistry();
  const listening = new Set<number>();
  const alive = new Map<number, Worker>();
  let stopping = false;
  let announced = false;
  /** Open health queries: query id → the answers still awaited, by worker id. */
  const healthQueries = new Map<number, (workerId: number, report: HealthReport) => void>();
  let nextQuery = 0;

  /** Asks every listening worker for its health; the server is ok only if all are. */
  const aggregateHealth = (): Promise<HealthReport> =>
    new Promise((resolve) => {
      const id = nextQuery++;
      const asked = [...listening].map((workerId) => alive.get(workerId)).filter((w) => w?.isConnected());
      const answers = new Map<number, HealthReport>();
      const finish = (): void => {
        clearTimeout(timer);
        healthQueries.delete(id);
        resolve(
          combineHealth(
            asked.map((w) => ({ id: w?.id ?? -1, pid: w?.process.pid })),
            answers,
          ),
        );
      };
      const timer = setTimeout(finish, HEALTH_QUERY_TIMEOUT);
      healthQueries.set(id, (workerId, report) => {
        answers.set(workerId, report);
        if (answers.size === asked.length) finish();
      });
      if (asked.length === 0) finish();
      for (const worker of asked) worker?.send({ type: HEALTH_QUERY, id } satisfies HealthQuery);
    });

  const fork = (): Worker => {
    const worker = cluster.fork();
    alive.set(worker.id, worker);
    worker.on('message', (message: WorkerMessage) => {
      if (message?.type === LISTENING) {
        listening.add(worker.id);
        if (!announced && listening.size === workers) {
          announced = true;
          logger.info(`listening on ${message.url} (broker: ${message.broker}, workers: ${workers})`);
        }
      } else if (message?.type === METRICS_REQUEST) {
        aggregator.clusterMetrics().then(
          (text) => worker.isConnected() && worker.send({ type: METRICS_REPLY, id: message.id, text }),
          (err: unknown) =>
            worker.isConnected() && worker.send({ type: METRICS_REPLY, id: message.id, error: String(err) }),
        );
      } else if (message?.type === HEALTH_REQUEST) {
        void aggregateHealth().then(
          (report) => worker.isConnected() && worker.send({ type: HEALTH_REPLY, id: message.id, report }),
        );
      } else if (message?.type === HEALTH_STATE) {
        healthQueries.get(message.id)?.(worker.id, message.report);
      }
    });
    worker.on('exit', (code, signal) => {
      alive.delete(worker.id);
      const wasListening = listening.delete(worker.id);
      if (stopping) {
        if (alive.size === 0) process.exit(0);
        return;
      }
      if (!wasListening) {
        // A worker that cannot even start (bad flags, port taken) would fail
        // the same way again: stop everything with its exit code.
        stopAll();
        // Exit 2 is a bad flag: the worker has already printed the one line.
        if (code === 2) process.exit(2);
        fail(`a worker could not start (exit ${code ?? signal})`, typeof code === 'number' && code > 0 ? code : 1);
      }
      logger.warn(`worker ${worker.process.pid} died (${signal ?? `exit ${code}`}); starting another`);
      fork();
    });
    return worker;
  };

  const stopAll = (): void => {
    stopping = true;
    for (const worker of alive.values()) worker.process.kill('SIGTERM');
  };
  const stop = (signal: string): void => {
    if (stopping) return;
    logger.info(`${signal}: stopping ${workers} workers`);
    stopAll();
    // Workers end their streams over --drain-time first.
    const grace = drainTime + PRIMARY_GRACE;
    setTimeout(() => {
      logger.warn(`workers still closing after ${grace} ms; exiting anyway`);
      for (const worker of alive.values()) worker.process.kill('SIGKILL');
      process.exit(0);
    }, grace).unref();
    if (alive.size === 0) process.exit(0);
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  for (let i = 0; i < workers; i++) fork();
}

/** The server's health from every asked worker's answer; a silent worker counts as down. */
export function combineHealth(
  asked: readonly { id: number; pid: number | undefined }[],
  answers: ReadonlyMap<number, HealthReport>,
): HealthReport {
  const problems: string[] = [];
  let broker = 'unknown';
  for (const worker of asked) {
    const report = answers.get(worker.id);
    const { pid } = worker;
    if (report === undefined) problems.push(`worker ${pid} did not answer within ${HEALTH_QUERY_TIMEOUT} ms`);
    else {
      broker = report.broker;
      if (!report.ok) problems.push(`worker ${pid}: ${report.error ?? 'not healthy'}`);
    }
  }
  if (asked.length === 0) problems.push('no worker is listening yet');
  const workers = answers.size;
  return problems.length === 0
    ? { ok: true, broker, workers }
    : { ok: false, broker, workers, error: problems.join('; ') };
}

/** In a worker: tells the primary this worker listens on `url`. */
export function reportListening(url: string, broker: string): void {
  process.send?.({ type: LISTENING, url, broker } satisfies ListeningMessage);
}

/**
 * In a worker: /metrics answers for the whole cluster. prom-client's
 * AggregatorRegistry in the primary collects every worker's registry over IPC
 * and sums each metric; this worker asks the primary for that sum.
 */
export function clusterMetricsSource(registry: Registry): MetricsSource {
  new AggregatorRegistry(); // installs prom-client's worker-side IPC listener
  AggregatorRegistry.setRegistries([registry]);
  const pending = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void }>();
  let next = 0;
  process.on('message', (message: MetricsReply) => {
    if (message?.type !== METRICS_REPLY) return;
    const request = pending.get(message.id);
    if (request === undefined) return;
    pending.delete(message.id);
    if (message.error !== undefined) request.reject(new Error(message.error));
    else request.resolve(message.text ?? '');
  });
  return {
    contentType: registry.contentType,
    metrics() {
      return new Promise((resolve, reject) => {
        const id = next++;
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error('the cluster primary did not answer the metrics request within 5 s'));
        }, 5000);
        pending.set(id, {
          resolve: (text) => (clearTimeout(timer), resolve(text)),
          reject: (err) => (clearTimeout(timer), reject(err)),
        });
        process.send?.({ type: METRICS_REQUEST, id } satisfies MetricsRequest);
      });
    },
  };
}

/**
 * In a worker: /healthz answers for the whole server. This worker answers the
 * primary's queries with its own hub's health (`local`, read at query time)
 * and asks the primary for everyone's when a probe comes in.
 */
export function clusterHealthSource(local: () => HealthReport): HealthSource {
  const pending = new Map<number, (report: HealthReport) => void>();
  let next = 0;
  process.on('message', (message: HealthQuery | HealthReply) => {
    if (message?.type === HEALTH_QUERY) {
      process.send?.({ type: HEALTH_STATE, id: message.id, report: local() } satisfies HealthState);
    } else if (message?.type === HEALTH_REPLY) {
      pending.get(message.id)?.(message.report);
      pending.delete(message.id);
    }
  });
  return () =>
    new Promise((resolve) => {
      const id = next++;
      // The primary answers within HEALTH_QUERY_TIMEOUT; past twice that it is
      // gone or stuck, and the server is not healthy.
      const timer = setTimeout(() => {
        pending.delete(id);
        resolve({ ...local(), ok: false, error: 'the cluster primary did not answer the health request' });
      }, 2 * HEALTH_QUERY_TIMEOUT);
      pending.set(id, (report) => (clearTimeout(timer), resolve(report)));
      process.send?.({ type: HEALTH_REQUEST, id } satisfies HealthRequest);
    });
}
