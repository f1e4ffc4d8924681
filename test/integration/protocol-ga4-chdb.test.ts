import { ga4Suite } from './protocol-ga4.suite.js';

// On chDB (the modern column layout); chDB allows one data directory per process, so one engine, in this file's own worker.
ga4Suite('chdb', ['uws']);
