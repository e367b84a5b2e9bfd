/**
 * The daemon's start path: GET /v1/status answered while the Koa app loads
 * (agent/startup.ts; the same answer the app gives), requests other than
 * status held until the app is there, and the logger's lines: in order, with
 * child meta, none lost at exit.
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
import { createLogger, silentLog } from '../../agent/logger.js';
import { LineCollector } from '../../agent/log-streams.js';
import { serve } from '../../agent/serve.js';
import { startupFront } from '../../agent/startup.js';
import { httpRequest } from './helpers.js';

test('GET /v1/status answered while the app loads is the Koa app\'s answer, logged as a request; other requests wait for the app', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'inband-start-'));
  const lines = new LineCollector();
  const logger = createLogger({ stream: lines, format: 'json' });
  const loaded = loadConfig({ argv: ['--standalone', '--backend', 'simulated', '--listen-host', '127.0.0.1', '--listen-port', '0', '--state-dir', join(dir, 'state')], env: {}, cmdlinePath: null });
  const agent = await serve({ loaded, logger });
  let koaOnly: Server | undefined;
  let early: Server | undefined;
  try {
    koaOnly = createServer(agent.api.app.callback());
    await new Promise<void>((r) => koaOnly!.listen(0, '127.0.0.1', () => r()));
    const koaBase = `http://127.0.0.1:${(koaOnly.address() as AddressInfo).port}`;
    // A server in its start-up state: the status document only, the app not handed over yet.
    const status = (await httpRequest(agent.url, 'GET', '/v1/status')).text;
    const doc = { body: Buffer.from(status) } as Parameters<typeof startupFront>[0];
    const front = startupFront(doc, logger.log.child({ module: 'http' }));
    early = createServer(front.handle);
    await new Promise<void>((r) => early!.listen(0, '127.0.0.1', () => r()));
    const earlyBase = `http://127.0.0.1:${(early.address() as AddressInfo).port}`;
    for (const path of ['/v1/status', '/status', '/v1/status/', '/v1/status?x=1']) {
      const before = await httpRequest(earlyBase, 'GET', path);
      const koa = await httpRequest(koaBase, 'GET', path);
      assert.equal(before.status, 200, path);
      assert.equal(before.text, koa.text, path);
      assert.equal(before.headers['content-type'], koa.headers['content-type'], path);
      assert.equal(before.headers['content-length'], koa.headers['content-length'], path);
    }
    // Anything else waits until the app is handed over, then the app answers it.
    let answered = false;
    const waiting = httpRequest(earlyBase, 'POST', '/v1/status', {}).then((r) => { answered = true; return r; });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(answered, false, 'a request other than GET status waits for the app');
    front.ready(agent.api.app.callback());
    const held = await waiting;
    const koaHeld = await httpRequest(koaBase, 'POST', '/v1/status', {});
    assert.equal(held.status, koaHeld.status);
    assert.equal(held.text, koaHeld.text);

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
    await new Promise<void>((r) => (early ? early.close(() => r()) : r()));
    await agent.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('log lines come out in order, below-level lines dropped, child meta merged, and the ring keeps them', () => {
  const lines = new LineCollector();
  const logger = createLogger({ stream: lines, format: 'json', level: 'info' });
  logger.log.info('first');
  const child = logger.log.child({ module: 'serve' });
  child.warn('second', { n: 2 });
  child.child({ sub: 'x' }).debug('below the level');
  child.child({ sub: 'x' }).error('third', { module: 'own' });
  const got = lines.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(got.map((l) => l.message), ['first', 'second', 'third']);
  assert.deepEqual([got[1]!.module, got[1]!.n, got[2]!.module, got[2]!.sub], ['serve', 2, 'own', 'x'], "a call's meta wins over its logger's");
  assert.deepEqual(Object.keys(got[1]!), ['level', 'message', 'module', 'n', 'timestamp']);
  for (const m of ['first', 'second', 'third']) assert.ok(logger.ring.text().includes(`"message":"${m}"`), 'the ring has the lines');
  assert.ok(!logger.ring.text().includes('below the level'));
  assert.equal(silentLog.child({}).info('x'), undefined);
});

test('lines a buffered logger still holds are written when the process exits', () => {
  // Run against the compiled module when there is one (CI), else the source through tsx.
  const compiled = fileURLToPath(new URL('../../agent/logger.js', import.meta.url));
  const [module, loader] = existsSync(compiled) ? [compiled, []] : [fileURLToPath(new URL('../../agent/logger.ts', import.meta.url)), ['--import', 'tsx']];
  const script = `
    const { createLogger } = await import(${JSON.stringify(module)});
    const logger = createLogger({ format: 'json', buffered: true });
    logger.log.info('held for the turn');
    logger.log.child({ module: 'x' }).warn('then the exit');
    process.exitCode = 3;
  `;
  const r = spawnSync(process.execPath, [...loader, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 3, r.stderr);
  const got = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { message: string });
  assert.deepEqual(got.map((l) => l.message), ['held for the turn', 'then the exit']);

  // Started, then a line written in the last turn before an explicit exit: the buffered line is flushed.
  const script2 = `
    const { createLogger } = await import(${JSON.stringify(module)});
    const logger = createLogger({ format: 'json', buffered: true });
    logger.log.error('fatal, exiting');
    process.exit(1);
  `;
  // An uncaught exception ends the process too: the held line still comes out.
  const script3 = `
    const { createLogger } = await import(${JSON.stringify(module)});
    const logger = createLogger({ format: 'json', buffered: true });
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
