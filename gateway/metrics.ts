import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Gateway metrics in Prometheus format. The hot path bumps plain numbers in
 * objects; prom-client reads them only when /metrics is scraped, so counting
 * an event costs an increment, not a label lookup in a metrics library.
 */

export interface GatewayCounters {
  /** Events received, by channel (`gen`, `sp`, …). */
  readonly received: Record<string, number>;
  readonly accepted: Record<string, number>;
  /** Events or frames refused, by error code. */
  readonly rejected: Record<string, number>;
  bytes: number;
  connections: number;
}

export interface GatewayMetrics {
  readonly counters: GatewayCounters;
  readonly registry: Registry;
  /** Seconds from receipt to reply, one observation per HTTP request or WS frame. */
  observeReply(seconds: number): void;
  /** Adds a gauge read at scrape time (sinks, actors). */
  addGauge(name: string, help: string, read: () => number): void;
  render(): Promise<string>;
}

export function createGatewayMetrics(): GatewayMetrics {
  const counters: GatewayCounters = { received: {}, accepted: {}, rejected: {}, bytes: 0, connections: 0 };
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'flowstat_process_' });

  const fromRecord = (name: string, help: string, label: string, record: Record<string, number>): void => {
    new Counter({
      name, help, labelNames: [label], registers: [registry],
      collect() {
        this.reset();
        for (const [value, n] of Object.entries(record)) this.inc({ [label]: value }, n);
      },
    });
  };
  fromRecord('flowstat_events_received_total', 'Events received, by channel', 'channel', counters.received);
  fromRecord('flowstat_events_accepted_total', 'Events accepted for processing, by channel', 'channel', counters.accepted);
  fromRecord('flowstat_events_rejected_total', 'Events or frames refused, by error code', 'reason', counters.rejected);
  new Counter({
    name: 'flowstat_received_bytes_total', help: 'Request body and frame bytes received', registers: [registry],
    collect() { this.reset(); this.inc(counters.bytes); },
  });
  new Gauge({
    name: 'flowstat_websocket_connections', help: 'Open WebSocket connections', registers: [registry],
    collect() { this.set(counters.connections); },
  });
  const latency = new Histogram({
    name: 'flowstat_reply_latency_seconds',
    help: 'Time from receiving a request or frame to sending its reply',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });

  return {
    counters,
    registry,
    observeReply: (s) => latency.observe(s),
    addGauge(name, help, read) {
      new Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
    },
    render: () => registry.metrics(),
  };
}

export function bump(record: Record<string, number>, label: string, n = 1): void {
  record[label] = (record[label] ?? 0) + n;
}
