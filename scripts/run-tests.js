#!/usr/bin/env node
// Runs the test suite with node:test through tsx.
//   node scripts/run-tests.js [--group unit|e2e|all] [files...]
// The e2e group (*.e2e.test.ts: CLI subprocesses, whole user journeys, the benches' short runs) is slower
// and can run alone.
// Database tests run on SQLite always, and on PostgreSQL too when MICROAPP_TEST_POSTGRES_URL is set.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
let group = 'all';
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--group') group = args[++i];
  else files.push(args[i]);
}

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

if (files.length === 0) {
  const all = [...walk('packages', []), ...walk('bench', [])].sort();
  for (const f of all) {
    const e2e = f.endsWith('.e2e.test.ts');
    if (group === 'all' || (group === 'e2e') === e2e) files.push(f);
  }
}

// The tests run the microapp command as users get it: bundled (bin/microapp.js runs the sources instead
// when the bundle is older than they are).
const bundled = spawnSync(process.execPath, ['scripts/build-cli.js'], { stdio: 'inherit' });
if (bundled.status !== 0) process.exit(bundled.status ?? 1);

const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
  {
    stdio: 'inherit',
    env: { ...process.env, MICROAPP_LOG_LEVEL: process.env.MICROAPP_LOG_LEVEL ?? 'silent' },
  },
);
process.exit(result.status ?? 1);
