import { snowplowSuite } from './protocol-snowplow.suite.js';

// Both server implementations, on the shared test ClickHouse server (18.16: the legacy column layout).
snowplowSuite('server');
