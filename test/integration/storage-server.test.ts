import { storageSuite } from './storage.suite.js';

storageSuite('server', 'ws');
