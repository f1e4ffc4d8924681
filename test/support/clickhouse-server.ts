/** The ClickHouse server launcher lives with the benchmarks, which use it too (bench/ must not import test/). */
export * from '../../bench/lib/clickhouse-server.js';
