import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  DEFAULT_DATABASE,
  DEFAULT_DATA_DIR,
  DEFAULT_PORT,
  loadConfig,
  parseConfig,
} from '../../engine/config/index.js';
import { FlowError } from '../../engine/errors/index.js';

const dir = mkdtempSync(join(tmpdir(), 'flowstat-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function configErrorOf(fn: () => unknown): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  return caught as ConfigError;
}

describe('config - defaults', () => {
  it('an empty config gives the documented defaults', () => {
    const config = parseConfig({});
    expect(config.server.port).toBe(8080);
    expect(DEFAULT_PORT).toBe(8080);
    expect(config.server.host).toBe('0.0.0.0');
    expect(config.dataDir).toBe('./data');
    expect(DEFAULT_DATA_DIR).toBe('./data');
    expect(config.clickhouse.database).toBe('flowstat');
    expect(DEFAULT_DATABASE).toBe('flowstat');
    expect(config.clickhouse.url).toBeUndefined();
    expect(config.clickhouse.user).toBe('default');
    expect(config.clickhouse.password).toBe('');
    expect(config.adminToken).toBeUndefined();
    expect(config.log.level).toBe('info');
    expect(config.enrichers).toEqual([]);
    expect(config.handlers).toEqual([]);
    expect(config.sinks).toEqual([]);
  });

  it('loadConfig without a path or FLOWSTAT_CONFIG uses defaults only', () => {
    expect(loadConfig({ env: {} })).toEqual(parseConfig({}));
  });

  it('a partial section keeps the defaults of its other fields', () => {
    const config = parseConfig({ server: { port: 9000 }, clickhouse: { url: 'http://ch:8123' } });
    expect(config.server).toEqual({ host: '0.0.0.0', port: 9000 });
    expect(config.clickhouse).toEqual({ url: 'http://ch:8123', user: 'default', password: '', database: 'flowstat' });
  });

  it('a component gets default keys and options', () => {
    const config = parseConfig({ sinks: [{ type: 'clickhouse' }] });
    expect(config.sinks[0]).toEqual({ type: 'clickhouse', keys: ['**'], options: {} });
  });
});

describe('config - validation', () => {
  it('reports every problem at once, each with its path', () => {
    const err = configErrorOf(() => parseConfig({
      bogusTop: true,
      server: { port: 8080, bogus: 1 },
      dataDir: 42,
      actors: { idleTimeoutMs: -5 },
      log: { level: 'loud' },
    }));
    expect(err.problems).toHaveLength(5);
    expect(err.problems).toContain('bogusTop: unknown key');
    expect(err.problems).toContain('server.bogus: unknown key');
    expect(err.problems.some((p) => p.startsWith('dataDir: '))).toBe(true);
    expect(err.problems.some((p) => p.startsWith('actors.idleTimeoutMs: '))).toBe(true);
    expect(err.problems.some((p) => p.startsWith('log.level: '))).toBe(true);
  });

  it('the error is a FlowError with FLOW_ERR_CONFIG_INVALID whose message lists the problems', () => {
    const err = configErrorOf(() => parseConfig({ server: { port: 70000 }, shutdown: { timeoutMs: 0 } }));
    expect(err).toBeInstanceOf(FlowError);
    expect(err.code).toBe('FLOW_ERR_CONFIG_INVALID');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('2 problem(s)');
    expect(err.message).toContain('server.port: ');
    expect(err.message).toContain('shutdown.timeoutMs: ');
  });

  it('names paths inside component lists with their index', () => {
    const err = configErrorOf(() => parseConfig({
      handlers: [{ type: 'funnel' }, { type: 'x', keys: [], typo: 1, timeoutMs: 999_999 }],
      sinks: [{ name: 'Bad Name', type: 'clickhouse' }],
    }));
    expect(err.problems.some((p) => p.startsWith('handlers[1].keys: '))).toBe(true);
    expect(err.problems).toContain('handlers[1].typo: unknown key');
    expect(err.problems.some((p) => p.startsWith('handlers[1].timeoutMs: '))).toBe(true);
    expect(err.problems.some((p) => p.startsWith('sinks[0].name: '))).toBe(true);
  });

  it.each([null, 'port: 1', 42, [1, 2]])('refuses a root that is not an object (%j)', (raw) => {
    const err = configErrorOf(() => parseConfig(raw));
    expect(err.problems).toEqual(['(root): the config file must contain an object']);
  });

  it('refuses a ClickHouse URL that is not http(s) and a database that is not an identifier', () => {
    const err = configErrorOf(() => parseConfig({ clickhouse: { url: 'ftp://ch', database: 'flow-stat; DROP' } }));
    expect(err.problems.some((p) => p.startsWith('clickhouse.url: '))).toBe(true);
    expect(err.problems).toContain('clickhouse.database: must be a plain identifier');
  });

  it('refuses an admin token shorter than 16 characters', () => {
    const err = configErrorOf(() => parseConfig({ adminToken: 'short' }));
    expect(err.problems).toEqual(['adminToken: must be at least 16 characters']);
  });
});

describe('config - environment', () => {
  const env = {
    PORT: '9090',
    FLOWSTAT_DATA_DIR: '/var/lib/flowstat',
    CLICKHOUSE_URL: 'https://ch.example.com:8443',
    CLICKHOUSE_USER: 'writer',
    CLICKHOUSE_PASSWORD: 's3cret',
    CLICKHOUSE_DATABASE: 'analytics',
    FLOWSTAT_ADMIN_TOKEN: 'a-very-long-admin-token',
  };

  it('environment variables fill fields the file does not set', () => {
    const config = parseConfig({}, env);
    expect(config.server.port).toBe(9090);
    expect(config.dataDir).toBe('/var/lib/flowstat');
    expect(config.clickhouse).toEqual({ url: 'https://ch.example.com:8443', user: 'writer', password: 's3cret', database: 'analytics' });
    expect(config.adminToken).toBe('a-very-long-admin-token');
  });

  it('environment variables win over the file', () => {
    const file = {
      server: { port: 1234, host: '127.0.0.1' },
      dataDir: './other',
      clickhouse: { url: 'http://file:8123', user: 'fileuser', password: 'filepw', database: 'filedb' },
      adminToken: 'token-from-the-file-xxxx',
    };
    const config = parseConfig(file, env);
    expect(config.server).toEqual({ host: '127.0.0.1', port: 9090 });
    expect(config.dataDir).toBe('/var/lib/flowstat');
    expect(config.clickhouse).toEqual({ url: 'https://ch.example.com:8443', user: 'writer', password: 's3cret', database: 'analytics' });
    expect(config.adminToken).toBe('a-very-long-admin-token');
  });

  it('an empty environment variable does not override the file', () => {
    expect(parseConfig({ server: { port: 1234 } }, { PORT: '' }).server.port).toBe(1234);
  });

  it('does not modify the caller\'s object', () => {
    const file = { server: { port: 1234 } };
    parseConfig(file, { PORT: '9090' });
    expect(file).toEqual({ server: { port: 1234 } });
    expect(Object.isFrozen(file.server)).toBe(false);
  });

  it.each([
    ['PORT', 'abc', 'server.port (from PORT): '],
    ['PORT', '99999', 'server.port (from PORT): '],
    ['PORT', '-1', 'server.port (from PORT): '],
    ['CLICKHOUSE_URL', 'not a url', 'clickhouse.url (from CLICKHOUSE_URL): '],
    ['CLICKHOUSE_DATABASE', 'bad-name', 'clickhouse.database (from CLICKHOUSE_DATABASE): '],
    ['FLOWSTAT_ADMIN_TOKEN', 'short', 'adminToken (from FLOWSTAT_ADMIN_TOKEN): '],
  ])('a bad %s=%j is reported naming the variable', (name, value, prefix) => {
    const err = configErrorOf(() => parseConfig({}, { [name]: value }));
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatch(new RegExp(`^${prefix.replace(/[.()[\]]/g, '\\$&')}`));
  });

  it('a bad file value for a field is not blamed on an environment variable', () => {
    const err = configErrorOf(() => parseConfig({ server: { port: 'abc' } }, {}));
    expect(err.problems[0]).toMatch(/^server\.port: /);
  });

  it('env and file problems are reported together', () => {
    const err = configErrorOf(() => parseConfig({ actors: { shards: 0 } }, { PORT: 'abc' }));
    expect(err.problems).toHaveLength(2);
    expect(err.problems.some((p) => p.startsWith('server.port (from PORT): '))).toBe(true);
    expect(err.problems.some((p) => p.startsWith('actors.shards: '))).toBe(true);
  });
});

describe('config - files', () => {
  it('loads a YAML file', () => {
    const path = writeFile('flowstat.yaml', [
      'server:',
      '  port: 9001',
      'dataDir: /srv/flowstat',
      'clickhouse:',
      '  url: http://clickhouse:8123',
      'sinks:',
      '  - type: clickhouse',
      '    options:',
      '      batchRows: 5000',
      '',
    ].join('\n'));
    const config = loadConfig({ path, env: {} });
    expect(config.server.port).toBe(9001);
    expect(config.dataDir).toBe('/srv/flowstat');
    expect(config.clickhouse.url).toBe('http://clickhouse:8123');
    expect(config.sinks).toEqual([{ type: 'clickhouse', keys: ['**'], options: { batchRows: 5000 } }]);
  });

  it('loads a JSON file', () => {
    const path = writeFile('flowstat.json', JSON.stringify({ server: { port: 9002 }, log: { level: 'debug' } }));
    const config = loadConfig({ path, env: {} });
    expect(config.server.port).toBe(9002);
    expect(config.log.level).toBe('debug');
  });

  it('an empty file gives the defaults', () => {
    const path = writeFile('empty.yaml', '');
    expect(loadConfig({ path, env: {} })).toEqual(parseConfig({}));
  });

  it('takes the file from FLOWSTAT_CONFIG when no path is given, and env still wins', () => {
    const path = writeFile('from-env.yaml', 'server:\n  port: 9003\ndataDir: ./x\n');
    const config = loadConfig({ env: { FLOWSTAT_CONFIG: path, FLOWSTAT_DATA_DIR: './y' } });
    expect(config.server.port).toBe(9003);
    expect(config.dataDir).toBe('./y');
  });

  it('a missing file is a ConfigError naming the path', () => {
    const path = join(dir, 'does-not-exist.yaml');
    const err = configErrorOf(() => loadConfig({ path, env: {} }));
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toContain(path);
    expect(err.code).toBe('FLOW_ERR_CONFIG_INVALID');
  });

  it('a directory instead of a file is a ConfigError naming the path', () => {
    const path = join(dir, 'a-directory');
    mkdirSync(path);
    const err = configErrorOf(() => loadConfig({ path, env: {} }));
    expect(err.problems[0]).toContain(path);
  });

  it('invalid YAML is a ConfigError naming the file', () => {
    const path = writeFile('broken.yaml', 'server:\n  port: [9000\n  host: x\n');
    const err = configErrorOf(() => loadConfig({ path, env: {} }));
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toContain(path);
    expect(err.problems[0]).not.toContain('\n');
  });

  it('a key repeated in the file is a ConfigError rather than a silent override', () => {
    const path = writeFile('dup.yaml', 'server:\n  port: 1\n  port: 2\n');
    const err = configErrorOf(() => loadConfig({ path, env: {} }));
    expect(err.problems[0]).toContain(path);
  });

  it('file problems are reported with their paths', () => {
    const path = writeFile('bad-values.yaml', 'server:\n  port: "eighty"\n  bogus: 1\nactors:\n  idleTimeoutMs: 0\n');
    const err = configErrorOf(() => loadConfig({ path, env: {} }));
    expect(err.problems).toContain('server.bogus: unknown key');
    expect(err.problems.some((p) => p.startsWith('server.port: '))).toBe(true);
    expect(err.problems.some((p) => p.startsWith('actors.idleTimeoutMs: '))).toBe(true);
  });
});

describe('config - frozen result', () => {
  it('the result is deeply frozen', () => {
    const config = parseConfig({ sinks: [{ type: 'clickhouse', options: { nested: { deep: [1, 2] } } }] });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.server)).toBe(true);
    expect(Object.isFrozen(config.actors)).toBe(true);
    expect(Object.isFrozen(config.sinks)).toBe(true);
    expect(Object.isFrozen(config.sinks[0])).toBe(true);
    expect(Object.isFrozen(config.sinks[0]!.keys)).toBe(true);
    const options = config.sinks[0]!.options as { nested: { deep: number[] } };
    expect(Object.isFrozen(options.nested.deep)).toBe(true);
  });

  it('writing to the result throws instead of silently changing it', () => {
    const config = parseConfig({ sinks: [{ type: 'clickhouse' }] });
    expect(() => { (config.server as { port: number }).port = 1; }).toThrow(TypeError);
    expect(() => { (config.sinks as unknown[]).push({}); }).toThrow(TypeError);
    expect(() => { (config.sinks[0]!.keys as string[])[0] = 'in.**'; }).toThrow(TypeError);
    expect(config.server.port).toBe(8080);
    expect(config.sinks[0]!.keys).toEqual(['**']);
  });

  it('freezing one result does not freeze the defaults of the next', () => {
    parseConfig({ sinks: [{ type: 'a' }] });
    const next = parseConfig({ sinks: [{ type: 'b' }] });
    expect(next.sinks[0]!.keys).toEqual(['**']);
    expect(next.sinks[0]!.options).toEqual({});
  });
});
