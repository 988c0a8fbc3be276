// Every bench, run in its short mode: it must print its figures with the command that reproduces them, and
// it must fail (exit 1, no figure) when what it compares against answers errors instead of doing the work.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';

const root = resolve(import.meta.dirname, '../..');
const postgres = process.env.MICROAPP_TEST_POSTGRES_URL ?? 'none';
const canSandbox = existsSync('/usr/bin/bwrap');
const hasNginx = existsSync('/usr/sbin/nginx');
const hasChromium = existsSync(process.env.MICROAPP_CHROMIUM ?? '/usr/bin/chromium');

function bench(name: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((done) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join('bench', name, 'run.ts'), '--quick', ...args],
      {
        cwd: root,
        env: { ...process.env, MICROAPP_LOG_LEVEL: 'warn' },
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('exit', (code) => done({ code: code ?? 1, out, err }));
  });
}

const work = mkdtempSync(join(tmpdir(), 'microapp-bench-test-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** A figure was printed with the line that reproduces it, and nothing failed. */
function printed(r: { code: number; out: string; err: string }, ...expected: RegExp[]) {
  assert.equal(r.code, 0, `the bench failed:\n${r.out}\n${r.err}`);
  assert.match(r.out, /reproduce with: npx tsx bench\/\S+\/run\.ts --/);
  for (const e of expected) assert.match(r.out, e);
}

/** It stopped with exit 1, said why, and printed no figure. */
function refused(r: { code: number; out: string; err: string }, why: RegExp) {
  assert.equal(r.code, 1, `the bench should have failed:\n${r.out}\n${r.err}`);
  assert.match(r.err, /bench failed/);
  assert.match(r.err, why);
}

describe('benches measure what they say', () => {
  test('rego: CPU time per decision beside cedar-wasm, the engines agreeing first', async () => {
    printed(await bench('rego'), /µs CPU\/decision/, /cedar-wasm \/ Rego, CPU per decision: [\d.]+x/);
  });

  test("repos: an app's repository beside a bare git init", async () => {
    printed(
      await bench('repos'),
      /\d+\.\d ms per repository/,
      /an app's repository \/ a bare init: [\d.]+x/,
      /shared \(sqlite\): made [\d.]+ ms .* first read [\d.]+ ms, next reads [\d.]+ ms/,
    );
  });

  test('a bench refuses an argument that is not a number, and says so', async () => {
    const r = await bench('rego', '--rounds', 'many');
    assert.equal(r.code, 2);
    assert.match(r.err, /--rounds must be a number/);
  });

  test('runtime: direct, nginx and the gateway get the same status for the same work', {
    skip: !canSandbox || !hasNginx ? 'needs bubblewrap and nginx (.ci/run installs both)' : false,
  }, async () => {
    printed(
      await bench('runtime'),
      /GET \/favicon\.ico/,
      /GET \/ \(the app verifies/,
      /nginx reverse proxy\s+\d+/,
      /gateway \/ nginx: [\d.]+x throughput/,
      /requests a second on a schedule/,
      /p99 [\d.]+ against [\d.]+ ms: -?[\d.]+ ms added \(goal: at most 2 ms over nginx: (met|missed)\)/,
      /Cold start through the gateway/,
    );
  });

  test('runtime: nginx answering 502 (its workers cannot open the app socket) fails the run', {
    skip: !canSandbox || !hasNginx ? 'needs bubblewrap and nginx (.ci/run installs both)' : false,
  }, async () => {
    refused(
      await bench('runtime', '--colds', '0', '--instances', '0', '--rate', '0', '--nginx-user', 'nobody'),
      /nginx reverse proxy .*every response should be 204, but \d+ were 502[\s\S]*Permission denied/,
    );
  });

  test('pipeline: both SBOM tools as fresh processes on the same packages', async () => {
    printed(
      await bench('pipeline'),
      /the same purls from both/,
      /cyclonedx-npm \/ microapp: [\d.]+x wall, [\d.]+x CPU/,
    );
  });

  test('pipeline: cyclonedx-npm failing on the project fails the run', async () => {
    // A lockfile without its package.json: cyclonedx-npm refuses it.
    const dir = join(work, 'lock-only');
    mkdirSync(dir);
    copyFileSync(join(root, 'templates/form/package-lock.json'), join(dir, 'package-lock.json'));
    refused(await bench('pipeline', '--templates', '', '--lockfile-dir', dir), /cyclonedx-npm .*failed/);
  });

  test('cli: each command beside node -e 0, bundled and from the sources', async () => {
    printed(
      await bench('cli'),
      /node -e 0\s+\d+ ms wall/,
      /microapp apps list\s+\d+ ms wall .* goal <= 150 ms/,
      /sources \/ bundle, sbom: [\d.]+x wall/,
    );
  });

  test('audit: governed writes a second and a verified chain, on SQLite and PostgreSQL', async () => {
    printed(
      await bench('audit', '--postgres', postgres),
      /SQLite\s+governed writes:\s+[\d,]+ events\/s .* goal >= 10,000/,
      /SQLite\s+verify: [\d.]+ s \([\d,]+ events\/s\) in worker threads; [\d.]+ s walking it in process/,
    );
  });

  test('api: every row answers its expected status, on SQLite and PostgreSQL', async () => {
    printed(
      await bench('api', '--postgres', postgres),
      /SQLite: POST \/api\/v1\/apps \(register\)\s+p50/,
      /SQLite: list, a creator \(one department\)\s+p50 .* goal p99 <= 20 ms/,
    );
  });

  test('replicas: one replica against three on one PostgreSQL, every response as expected', {
    skip: postgres === 'none' && 'needs PostgreSQL',
  }, async () => {
    printed(
      await bench('replicas', '--postgres', postgres),
      /a creator's catalog list\s+1 replica\s+[\d,]+ req\/s\s+3 replicas\s+[\d,]+ req\/s\s+3 replicas \/ 1: [\d.]+x/,
      /registrations\s+1 replica\s+[\d,]+ req\/s/,
      /tokens issued \(audited\)\s+1 replica\s+[\d,]+ req\/s\s+3 replicas\s+[\d,]+ req\/s/,
    );
  });

  test('backup: backup and restore of a serving platform beside pg_dump', {
    skip: postgres === 'none' && 'needs PostgreSQL',
  }, async () => {
    printed(
      await bench('backup', '--postgres', postgres),
      /microapp server backup\s+[\d.]+ s wall/,
      /microapp server restore\s+[\d.]+ s wall/,
      /backup \/ pg_dump: [\d.]+x/,
    );
  });

  test('api: a database that is not there fails the run instead of dropping its rows', async () => {
    refused(await bench('api', '--apps', '0', '--postgres', 'postgres://postgres@127.0.0.1:1/none'), /./);
  });

  test('dlp: the broker allows and masks as expected', async () => {
    printed(await bench('dlp'), /1 KB, one e-mail \(masked\).*\(body rewritten\)/);
  });

  test('usage: rows committed into a full table, timed ids beside random ones, on both databases', async () => {
    printed(
      await bench('usage', '--postgres', postgres),
      /SQLite: 4,000 rows already in each table/,
      /timed ids \(newTimedId, now\)\s+[\d.]+\s+[\d.]+/,
      /timed \/ random: [\d.]+x the wall time/,
    );
  });

  test('lifecycle: the job warns exactly the unused apps', async () => {
    printed(await bench('lifecycle', '--postgres', postgres), /sqlite\s+500 apps/);
  });

  test('flows: the expense form and a request for changes, counted and timed in the console beside the API', {
    skip: !(hasChromium && canSandbox) && 'needs chromium and bubblewrap',
  }, async () => {
    printed(await bench('flows'), /\d+ clicks and entries .* ratio [\d.]+x/);
  });

  test('console: time to interactive of a big catalog beside a small one', {
    skip: hasChromium ? false : 'needs chromium (.ci/run installs it)',
  }, async () => {
    printed(await bench('console'), /ratio [\d.]+x/);
  });
});
