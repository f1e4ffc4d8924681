import { inject } from 'vitest';
import { createSilentLogger } from '../../engine/index.js';
import { migrate, type ClickHouseStore } from '../../sinks/index.js';
import { uniqueDatabase } from '../support/gateway.js';
import { serverStore } from '../support/storage.js';
import { querySuite } from './query.suite.js';

let store: ClickHouseStore;
querySuite('server', async () => {
  store = await serverStore(inject('clickhouseUrl'), uniqueDatabase('query'));
  await migrate(store, createSilentLogger());
  return store;
}, async () => {
  await store.command(`DROP DATABASE IF EXISTS \`${store.database}\``);
  await store.close();
});
