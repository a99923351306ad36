// GET /metrics: the hub's counters in the Prometheus text format (prom-client).
// Invariant: nothing here runs per event — every metric is read from
// hub.stats() and the broker's counters in a collect() callback at scrape
// time, so the fan-out loop never calls prom-client
// (docs/performance.md#what-keeps-it-fast).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import { hasCounters, type BrokerCounterValues } from '../core/broker.js';
import type { Hub } from '../core/hub.js';
import type { RefusalKind } from '../core/refusals.js';
import { connectionLimiterOf, type StreamRefusalReason } from './connection-limits.js';
import { publishRefusalsOf, type PublishRefusalReason } from './publish.js';
import { sendJsonError } from './respond.js';
import type { TokenCounters } from './token.js';

/** What a broker without the counters capability reports (the memory broker). */
const NO_COUNTERS: BrokerCounterValues = { badPayloads: 0, reconnects: 0 };

/** Counters kept outside the hub: token mode's resolver, and the server around the hub (sse-runserver). */
export interface MetricsExtras {
  tokens?: TokenCounters;
  /** Requests whose headers or body did not arrive within the server's timeouts. */
  requestTimeouts?: () => number;
}

/** A registry with one metric per hub/broker counter, each read when scraped. */
export function createMetricsRegistry(hub: Hub, extras: MetricsExtras = {}): Registry {
  const registry = new Registry();
  const { broker } = hub;
  const brokerCounters = (): BrokerCounterValues => (hasCounters(broker) ? broker.counters : NO_COUNTERS);

  // `aggregator` says how prom-client's AggregatorRegistry merges the workers'
  // values (sse-runserver --workers): sums, except health, which is the worst.
  const gauge = (name: string, help: string, read: () => number, aggregator: 'sum' | 'min' = 'sum'): void => {
    new Gauge({
      name,
      help,
      aggregator,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  };
  const counter = (name: string, help: string, read: () => number): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        // The source of truth is the hub's own counter; mirror it.
        this.reset();
        this.inc(read());
      },
    });
  };

  gauge('sse_hub_connections', 'Open SSE connections.', () => hub.stats().connections);
  gauge('sse_hub_channels', 'Channels with at least one local listener (broker subscriptions).', () => {
    return hub.stats().channels;
  });
  gauge(
    'sse_hub_broker_up',
    '1 while the broker subscription is up (in every worker), else 0.',
    () => (hub.isHealthy() ? 1 : 0),
    'min',
  );
  gauge('sse_hub_processes', 'Processes (cluster workers) reporting these figures.', () => 1);
  counter('sse_hub_events_received_total', 'Events received from the broker.', () => hub.stats().eventsReceived);
  counter('sse_hub_frames_written_total', 'Frames written to connections (one event to N listeners counts N).', () => {
    return hub.stats().framesWritten;
  });
  counter('sse_hub_slow_clients_closed_total', 'Connections closed for holding more than maxBufferedBytes.', () => {
    return hub.stats().slowClientsClosed;
  });
  gauge('sse_hub_replays_active', 'History replays (resumes with Last-Event-ID) running now.', () => {
    return hub.stats().replaysActive;
  });
  gauge('sse_hub_replays_waiting', 'Resumes waiting for a replay slot (maxReplays were running).', () => {
    return hub.stats().replaysWaiting;
  });
  counter(
    'sse_hub_replays_queued_total',
    'Resumes that had to wait for a replay slot (maxReplays were running).',
    () => {
      return hub.stats().replaysQueued;
    },
  );
  counter(
    'sse_hub_replays_stalled_total',
    'Replays closed because the client took no bytes for replayStallTimeout ms (also counted as slow clients).',
    () => hub.stats().replaysStalled,
  );
  counter(
    'sse_hub_history_cache_hits_total',
    'Replay reads answered from the per-process history cache, without a broker read.',
    () => hub.stats().historyCacheHits,
  );
  counter(
    'sse_hub_history_cache_misses_total',
    'Replay reads the history cache passed on to the broker (no live cached run covered them).',
    () => hub.stats().historyCacheMisses,
  );
  counter(
    'sse_hub_history_cache_fill_reads_total',
    "Broker page reads the history cache made to start or extend a channel's cached run.",
    () => hub.stats().historyCacheFillReads,
  );
  gauge('sse_hub_history_cache_bytes', 'Bytes the history cache holds now (approximate).', () => {
    return hub.stats().historyCacheBytes;
  });
  counter('sse_hub_bad_payloads_total', 'Broker payloads that were not django_sse arrays, delivered raw.', () => {
    return brokerCounters().badPayloads;
  });
  counter('sse_hub_broker_reconnects_total', 'Times the broker subscription came back after a loss.', () => {
    return brokerCounters().reconnects;
  });
  counter(
    'sse_hub_replica_waits_failed_total',
    'Events refused because fewer replicas than --redis-wait-replicas acknowledged them in time.',
    () => brokerCounters().replicaWaitsFailed ?? 0,
  );
  const { tokens } = extras;
  if (tokens !== undefined) {
    counter(
      'sse_hub_tokens_refused_total',
      'Stream requests refused for a bad, expired or wrongly signed token.',
      () => {
        return tokens.refused;
      },
    );
    counter('sse_hub_token_streams_expired_total', 'Open streams ended because their token expired.', () => {
      return tokens.expired;
    });
  }
  if (extras.requestTimeouts !== undefined) {
    counter(
      'sse_hub_request_timeouts_total',
      'Requests closed with 408 because their headers (--headers-timeout) or body (--request-timeout) came too slowly.',
      extras.requestTimeouts,
    );
  }
  // One series per reason, each present from the start (0), so alerts can rate() it.
  const reasons: StreamRefusalReason[] = ['max-connections', 'max-connections-per-ip', 'session-store'];
  new Counter({
    name: 'sse_hub_streams_refused_total',
    help: 'Streams answered 200 + retry: + end instead of opened, by reason (max-connections, max-connections-per-ip, session-store).',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const { refused } = connectionLimiterOf(hub).stats();
      this.reset();
      for (const reason of reasons) this.inc({ reason }, refused[reason]);
    },
  });
  // The admin dashboard's refusal totals, by kind: the only series that counts
  // 401/403s of every endpoint (streams, /channels, the dashboard's API), not
  // just /publish's; the kinds the hub records are present from the start.
  const kinds: RefusalKind[] = ['slow-client', 'cap', 'unauthorized', 'forbidden', 'session-store'];
  new Counter({
    name: 'sse_hub_refusals_total',
    help: "Requests and streams refused, by kind, as the admin dashboard's refusal log counts them: slow-client, cap (a connection, channel or body limit), unauthorized (401), forbidden (403), session-store.",
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      const totals = hub.refusals.totals();
      for (const kind of kinds) this.inc({ kind }, totals[kind] ?? 0);
      for (const [kind, count] of Object.entries(totals)) if (!kinds.includes(kind)) this.inc({ kind }, count);
    },
  });
  const publishReasons: PublishRefusalReason[] = [
    'unauthorized',
    'forbidden',
    'payload-too-large',
    'unsupported-media-type',
  ];
  new Counter({
    name: 'sse_hub_publish_refused_total',
    help: 'Publish requests refused, by reason: unauthorized (401), forbidden (403: not loopback, a web page, a foreign Host), payload-too-large (413, --max-publish-bytes), unsupported-media-type (415).',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const refused = publishRefusalsOf(hub);
      this.reset();
      for (const reason of publishReasons) this.inc({ reason }, refused[reason]);
    },
  });
  return registry;
}

/** Where the handler gets its text: this process's registry, or the cluster's aggregate. */
export interface MetricsSource {
  contentType: string;
  metrics(): Promise<string>;
}

export function createMetricsHandler(
  source: MetricsSource,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJsonError(res, 405, `use GET to read the metrics, not ${req.method}`, { Allow: 'GET, HEAD' });
      return;
    }
    const text = await source.metrics();
    res.writeHead(200, { 'Content-Type': source.contentType, 'Cache-Control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : text);
  };
}
