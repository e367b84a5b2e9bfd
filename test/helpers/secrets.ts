/**
 * Suite-wide secret bookkeeping for the leak check (test/leak/leak-check.test.ts).
 *
 * Every test that handles a secret (BMC password, agent token) records it here;
 * every log a test produces goes under testLogDir(). After the whole suite,
 * scripts/run-tests.mjs runs the leak check, which greps all captured logs, the
 * test runner's own output and every process argument list seen during the run
 * for every recorded secret. Secrets are stored base64-encoded so that the list
 * itself is not a match.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export function artifactsDir(): string | undefined {
  return process.env.INBAND_TEST_ARTIFACTS || undefined;
}

/** Records a secret the suite handled. Short strings (< 6 chars) are refused: they would match by accident. */
export function recordSecret(secret: string): string {
  if (secret.length < 6) throw new Error('recordSecret: test secrets must be at least 6 characters so the leak check is meaningful');
  const dir = artifactsDir();
  if (dir) appendFileSync(join(dir, 'secrets.list'), Buffer.from(secret, 'utf8').toString('base64') + '\n', { mode: 0o600 });
  return secret;
}

/** Directory for log files the leak check must read (created on demand). */
export function testLogDir(): string | undefined {
  const dir = artifactsDir();
  if (!dir) return undefined;
  const logs = join(dir, 'logs');
  mkdirSync(logs, { recursive: true });
  return logs;
}

/** Appends lines to a named capture file under testLogDir() (no-op outside the orchestrated run). */
export function captureLines(name: string, lines: string | string[]): void {
  const dir = testLogDir();
  if (!dir) return;
  const text = (Array.isArray(lines) ? lines : [lines]).join('\n') + '\n';
  appendFileSync(join(dir, `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}.log`), text);
}
