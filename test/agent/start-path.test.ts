/**
 * The daemon's start path: GET /v1/status answered in front of Koa (the same
 * answer the Koa app gives), and the deferred logger that lets the API answer
 * before winston loads without losing or reordering a line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../agent/config.js';
import { createLogger, LineCollector } from '../../agent/logger.js';
import { serve } from '../../agent/serve.js';
import { httpRequest } from './helpers.js';

test('GET /v1/status from the server in front of Koa is the Koa app\'s answer, logged as a request', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'inband-start-'));
  const lines = new LineCollector();
  const logger = createLogger({ stream: lines, format: 'json', defer: true });
  const loaded = loadConfig({ argv: ['--standalone', '--backend', 'simulated', '--listen-host', '127.0.0.1', '--listen-port', '0', '--state-dir', join(dir, 'state')], env: {}, cmdlinePath: null });
  const agent = await serve({ loaded, logger });
  let koaOnly: Server | undefined;
  try {
    koaOnly = createServer(agent.api.app.callback());
    await new Promise<void>((r) => koaOnly!.listen(0, '127.0.0.1', () => r()));
    const koaBase = `http://127.0.0.1:${(koaOnly.address() as AddressInfo).port}`;
    for (const path of ['/v1/status', '/status', '/v1/status/', '/v1/status?x=1']) {
      const front = await httpRequest(agent.url, 'GET', path);
      const koa = await httpRequest(koaBase, 'GET', path);
      assert.equal(front.status, 200, path);
      assert.equal(front.status, koa.status, path);
      assert.equal(front.text, koa.text, path);
      assert.equal(front.headers['content-type'], koa.headers['content-type'], path);
      assert.equal(front.headers['content-length'], koa.headers['content-length'], path);
    }
    assert.equal((await httpRequest(agent.url, 'GET', '/v1/status')).json.backend.kind, 'simulated');
    // Other methods on the status path are the app's, as before.
    const post = await httpRequest(agent.url, 'POST', '/v1/status', {});
    const koaPost = await httpRequest(koaBase, 'POST', '/v1/status', {});
    assert.equal(post.status, koaPost.status);
    assert.equal(post.text, koaPost.text);
    await new Promise((r) => setImmediate(r));
    const logged = lines.lines.map((l) => JSON.parse(l) as { module?: string; message: string });
    assert.ok(logged.some((l) => l.module === 'http' && /^GET \/v1\/status\?x=\*\*\* 200 [\d.]+ms$/.test(l.message)), 'the status request is logged, its query masked');
    assert.ok(logged.some((l) => l.module === 'http' && l.message.startsWith(`POST /v1/status ${post.status} `)));
  } finally {
    await new Promise<void>((r) => (koaOnly ? koaOnly.close(() => r()) : r()));
    await agent.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a deferred logger writes nothing until started, then every queued line in order with the time it was logged', async () => {
  const lines = new LineCollector();
  const logger = createLogger({ stream: lines, format: 'json', defer: true, level: 'info' });
  const before = new Date().toISOString();
  logger.log.info('first');
  const child = logger.log.child({ module: 'serve' });
  child.warn('second', { n: 2 });
  child.child({ sub: 'x' }).debug('below the level');
  child.child({ sub: 'x' }).error('third');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(lines.lines, []);
  await new Promise((r) => setTimeout(r, 5));
  const startedAt = new Date().toISOString();
  logger.start();
  logger.log.info('fourth');
  await new Promise((r) => setImmediate(r));
  const got = lines.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(got.map((l) => l.message), ['first', 'second', 'third', 'fourth']);
  assert.deepEqual([got[1]!.module, got[1]!.n, got[2]!.module, got[2]!.sub], ['serve', 2, 'serve', 'x']);
  for (const l of got.slice(0, 3)) {
    assert.ok(String(l.timestamp) >= before && String(l.timestamp) < startedAt, 'a queued line keeps the time it was logged');
  }
  for (const m of ['first', 'second', 'third', 'fourth']) assert.ok(logger.ring.text().includes(`"message":"${m}"`), 'the ring has the replayed lines');
  logger.start();
  assert.equal(lines.lines.length, 4, 'start is idempotent');
});

test('lines a deferred, buffered logger still holds are written when the process exits', () => {
  // Run against the compiled module when there is one (CI), else the source through tsx.
  const compiled = fileURLToPath(new URL('../../agent/logger.js', import.meta.url));
  const [module, loader] = existsSync(compiled) ? [compiled, []] : [fileURLToPath(new URL('../../agent/logger.ts', import.meta.url)), ['--import', 'tsx']];
  const script = `
    const { createLogger } = await import(${JSON.stringify(module)});
    const logger = createLogger({ format: 'json', defer: true, buffered: true });
    logger.log.info('queued before winston');
    logger.log.child({ module: 'x' }).warn('then the exit');
    process.exitCode = 3;
  `;
  const r = spawnSync(process.execPath, [...loader, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 3, r.stderr);
  const got = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { message: string });
  assert.deepEqual(got.map((l) => l.message), ['queued before winston', 'then the exit']);

  // Started, then a line written in the last turn before an explicit exit: the buffered line is flushed.
  const script2 = `
    const { createLogger } = await import(${JSON.stringify(module)});
    const logger = createLogger({ format: 'json', defer: true, buffered: true });
    logger.start();
    logger.log.error('fatal, exiting');
    process.exit(1);
  `;
  // An uncaught exception ends the process too: the queued line still comes out.
  const script3 = `
    const { createLogger } = await import(${JSON.stringify(module)});
    const logger = createLogger({ format: 'json', defer: true, buffered: true });
    logger.log.info('before the crash');
    setImmediate(() => { throw new Error('boom'); });
  `;
  const r3 = spawnSync(process.execPath, [...loader, '--input-type=module', '-e', script3], { encoding: 'utf8', timeout: 30_000 });
  assert.notEqual(r3.status, 0);
  assert.equal((JSON.parse(r3.stdout.trim()) as { message: string }).message, 'before the crash');

  const r2 = spawnSync(process.execPath, [...loader, '--input-type=module', '-e', script2], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r2.status, 1, r2.stderr);
  assert.equal((JSON.parse(r2.stdout.trim()) as { message: string }).message, 'fatal, exiting');
});
