import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startFailure } from '../src/modules/runtime/supervisor.ts';

/** What Node itself prints when `code` fails at start, in a folder with no node_modules. */
function nodeSays(code: string, type: 'module' | 'commonjs'): string {
  const dir = mkdtempSync(join(tmpdir(), 'microapp-start-'));
  try {
    return spawnSync(process.execPath, [`--input-type=${type}`, '-e', code], { cwd: dir, encoding: 'utf8' })
      .stderr;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a package left out of what was built is named, with what to do', () => {
  for (const [code, type] of [
    ["import Fastify from 'fastify-nowhere';", 'module'],
    ["require('better-sqlite3-nowhere')", 'commonjs'],
  ] as const) {
    const said = startFailure(nodeSays(code, type));
    assert.match(said, /cannot load the package (fastify|better-sqlite3)-nowhere/);
    assert.match(said, /under "dependencies" in package.json/);
  }
});

test("the app's own missing file is told apart from a package; other failures add nothing", () => {
  assert.match(startFailure(nodeSays("import './lib/gone.js';", 'module')), /cannot load its own file/);
  assert.equal(startFailure(nodeSays("throw new Error('the ledger is down')", 'module')), '');
});
