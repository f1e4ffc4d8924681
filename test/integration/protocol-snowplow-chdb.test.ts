import { snowplowSuite } from './protocol-snowplow.suite.js';

// On chDB (the modern column layout); chDB allows one data directory per process, so one engine, in this file's own worker.
snowplowSuite('chdb', ['uws']);
