import { countlySuite } from './protocol-countly.suite.js';

// Both server implementations, on the shared test ClickHouse server (18.16: the legacy column layout).
countlySuite('server');
