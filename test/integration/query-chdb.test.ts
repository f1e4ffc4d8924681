import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createSilentLogger } from '../../engine/index.js';
import { createChdbStore, migrate, type ClickHouseStore } from '../../sinks/index.js';
import { tempDir } from '../support/engine-process.js';
import { querySuite } from './query.suite.js';

// chDB allows one data directory per process: this file opens one, in its own worker.
const dir = tempDir();
let store: ClickHouseStore;
querySuite('chdb', async () => {
  store = await createChdbStore({ path: join(dir, 'chdb'), database: 'query_test' });
  await migrate(store, createSilentLogger());
  return store;
}, async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});
