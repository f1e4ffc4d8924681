/**
 * engine/logger — pino, configured once. The hot path never logs per event;
 * components count and log per batch or per state change.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export function createLogger(options: { level: string; name?: string; destination?: DestinationStream }): Logger {
  return pino(
    {
      name: options.name ?? 'flowstat',
      level: options.level,
      // Secrets never reach the log, wherever they appear in a logged object.
      redact: { paths: ['adminToken', '*.adminToken', 'password', '*.password', 'authorization', '*.authorization', 'headers.authorization'], censor: '[redacted]' },
    },
    options.destination ?? stdoutDestination(),
  );
}

/**
 * stdout, written synchronously (a log line is never lost in a crash), and
 * tolerant of a reader that went away: a broken pipe (EPIPE) must not keep a
 * stopping engine alive or crash a running one — logging is given up instead.
 */
function stdoutDestination(): DestinationStream {
  const dest = pino.destination({ fd: 1, sync: true });
  dest.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') return;
    process.stderr.write(`flowstat: log destination failed: ${err.message}\n`);
  });
  return dest;
}

export function createSilentLogger(): Logger {
  return pino({ level: 'silent' });
}
