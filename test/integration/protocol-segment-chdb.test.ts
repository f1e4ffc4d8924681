import { segmentSuite } from './protocol-segment.suite.js';

// On chDB (the modern column layout); chDB allows one data directory per process, so one engine, in this file's own worker.
segmentSuite('chdb', ['uws']);
