import { execFileSync } from 'node:child_process';

/**
 * Tests that run the engine as a user would (a child process) need dist/ to be
 * current, whichever way vitest was started. One compile, before any test.
 */
export default function setup(): void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
