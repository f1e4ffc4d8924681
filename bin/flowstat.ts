#!/usr/bin/env node
/**
 * The flowstat command line. `flowstat start` runs the engine (what
 * `npm start` does); `flowstat query <report>` runs an analytics report
 * (query/cli.ts).
 */
import { runFromEnvironment } from '../engine/main.js';
import { CONFIG_ENV_VARS } from '../engine/config/index.js';
import { runQueryCommand } from '../query/cli.js';

const USAGE = `usage: flowstat <command>

commands:
  start     run the engine (config from $FLOWSTAT_CONFIG and the environment)
  query     run a report: events, users, funnel, retention, sessions, timeline, segments
            (flowstat query --help)
  help      show this text

environment: ${CONFIG_ENV_VARS.join(', ')}
`;

async function main(argv: readonly string[]): Promise<number> {
  const command = argv[0] ?? 'help';
  switch (command) {
    case 'start':
      return runFromEnvironment();
    case 'query':
      return runQueryCommand(argv.slice(1));
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`flowstat: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  // Exit explicitly: idle keep-alive sockets of the native server must not keep a stopped engine alive.
  (code) => { process.exit(code); },
  (err: unknown) => {
    process.stderr.write(`flowstat: fatal: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
