import { ga4Suite } from './protocol-ga4.suite.js';

// Both server implementations, on the shared test ClickHouse server (18.16: the legacy column layout).
ga4Suite('server');
