import { rmSync } from 'node:fs';

/**
 * What the benchmark's engine servers (bench/servers/flowstat*.ts) share:
 * on SIGTERM the engine's ordered shutdown, then its data directory removed
 * and {"stopped":ok} printed; exit 0 only if the shutdown succeeded.
 */
export function stopOnSigterm(running: { stop(reason: string): Promise<boolean> }, dataDir: string, name: string): void {
  process.once('SIGTERM', () => {
    running.stop('SIGTERM').then(
      (ok) => {
        rmSync(dataDir, { recursive: true, force: true });
        process.stdout.write(`${JSON.stringify({ stopped: ok })}\n`, () => process.exit(ok ? 0 : 1));
      },
      (err: unknown) => {
        process.stderr.write(`${name}: ${String(err)}\n`);
        process.exit(1);
      },
    );
  });
}
