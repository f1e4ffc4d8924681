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
    options.destination,
  );
}

export function createSilentLogger(): Logger {
  return pino({ level: 'silent' });
}
