// sse-runserver --workers N: N processes share the port through node:cluster,
// each with its own hub and broker subscriptions. Invariants: only the Redis
// broker may have more than one worker (the memory broker would split the
// subscribers into islands that never see each other's events); the primary
// prints the one "listening" line once every worker listens, and on SIGTERM
// it waits for every worker to end its streams before exiting 0.
import cluster, { type Worker } from 'node:cluster';
import os from 'node:os';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Logger } from '../core/logger.js';
import type { MetricsSource } from '../http/metrics.js';

/** How long the primary waits for its workers after SIGTERM, in ms (workers give up at 4 s). */
const PRIMARY_GRACE = 4500;

const LISTENING = 'sse-hub:listening';
const METRICS_REQUEST = 'sse-hub:metrics-request';
const METRICS_REPLY = 'sse-hub:metrics-reply';

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

  const fork = (): Worker => {
    const worker = cluster.fork();
    alive.set(worker.id, worker);
    worker.on('message', (message: ListeningMessage | MetricsRequest) => {
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
