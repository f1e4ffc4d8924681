import { storageSuite } from './storage.suite.js';

// chDB allows one data directory per process: this file runs one engine, in its own worker.
storageSuite('chdb');
