/**
 * The tree's shape as the design card draws it: ipmi-kcs/ <- service/ <- agent/ | conductor/,
 * arrows down only, the two programs never importing each other, and one entry
 * (bin/inband-agent.js) picking a program. The lint rule is exercised on
 * in-memory sources so that a lazy import() cannot hide an upward arrow.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ESLint } from 'eslint';

const root = new URL('../../..', import.meta.url).pathname;

async function layerErrors(file: string, code: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: root });
  const [r] = await eslint.lintText(code, { filePath: join(root, file) });
  return (r?.messages ?? []).filter((m) => m.ruleId === 'layers/imports-point-down').map((m) => m.message);
}

test('the layer rule refuses upward and sideways arrows, static or dynamic', async () => {
  const cases: Array<[string, string, RegExp | null]> = [
    ['agent/probe.ts', "export const m = () => import('../conductor/cli.js');", /agent\/ may not import conductor\//],
    ['conductor/probe.ts', "import { main } from '../agent/cli.js'; export { main };", /conductor\/ may not import agent\//],
    ['service/probe.ts', "export type T = import('../agent/cli.js').CliIo;", /service\/ may not import agent\//],
    ['service/probe.ts', "export * from '../conductor/rotate.js';", /service\/ may not import conductor\//],
    ['ipmi-kcs/probe.ts', "export const m = () => import('../service/secret.js');", /ipmi-kcs\/ may not import service\//],
    ['service/probe.ts', "import Koa from 'koa'; export const k = Koa;", /service\/ may not load koa/],
    ['conductor/probe.ts', "import Router from '@koa/router'; export const r = Router;", /conductor\/ may not load @koa\/router/],
    // Downward arrows are fine.
    ['agent/probe.ts', "export const m = () => import('../service/secret.js');", null],
    ['conductor/probe.ts', "import { Secret } from '../service/secret.js'; export { Secret };", null],
    ['service/probe.ts', "import { BaseTransport } from '../ipmi-kcs/base-transport.js'; export { BaseTransport };", null],
  ];
  for (const [file, code, want] of cases) {
    const errors = await layerErrors(file, code);
    if (want) assert.ok(errors.some((e) => want.test(e)), `${file}: ${code} -> ${JSON.stringify(errors)}`);
    else assert.deepEqual(errors, [], `${file}: ${code}`);
  }
});

test('one entry, two programs: bin/inband-agent.js hands `conductor` to the conductor side', () => {
  const bin = join(root, 'bin', 'inband-agent.js');
  const conductor = spawnSync(process.execPath, [bin, 'conductor', '--help'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(conductor.status, 0, conductor.stderr);
  assert.match(conductor.stdout, /usage: inband-agent conductor rotate/);
  const agent = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(agent.status, 0, agent.stderr);
  assert.match(agent.stdout, /inband-agent serve/);
});
