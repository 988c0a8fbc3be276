import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../../server/test/harness.ts';

const bin = resolve(import.meta.dirname, '../bin/microapp.js');
type Run = { code: number; stdout: string; stderr: string };
function cli(env: Record<string, string>, ...args: string[]): Promise<Run> {
  const { NODE_TEST_CONTEXT: _, ...parent } = process.env;
  return new Promise((done) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { env: { ...parent, ...env }, timeout: 120_000 },
      (error, stdout, stderr) =>
        done({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('microapp ci: from init to a deterministic artifact, as a new user would', () => {
  let server: TestServer;
  let dir: string;
  let env: Record<string, string>;
  before(async () => {
    server = await startTestServer('sqlite');
    dir = mkdtempSync(join(tmpdir(), 'microapp-ci-'));
    env = { MICROAPP_CONFIG_DIR: join(dir, 'config'), MICROAPP_SERVER: server.url };
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('init, register, approve, ci: every step passes and the artifact digest is stable', async () => {
    const app = join(dir, 'recon');
    assert.equal((await cli(env, 'login', '--dev-user', 'alice@example.com')).code, 0);
    const init = await cli(
      env,
      'init',
      app,
      '--template',
      'finance-reconciliation',
      '--department',
      'finance',
    );
    assert.equal(init.code, 0, init.stderr);
    assert.equal((await cli(env, 'register', '-f', join(app, 'microapp.yaml'))).code, 0);

    const early = await cli(env, 'ci', '--dir', app);
    assert.equal(early.code, 1, 'not approved yet');
    assert.match(early.stderr, /FAIL manifest/);
    assert.match(early.stderr, /next: /);

    for (const reviewer of ['bob@example.com', 'erin@example.com']) {
      await cli(env, 'login', '--dev-user', reviewer);
      assert.equal((await cli(env, 'approvals', 'approve', 'recon')).code, 0);
    }
    await cli(env, 'login', '--dev-user', 'alice@example.com');
    const first = await cli(env, 'ci', '--dir', app, '--json');
    assert.equal(first.code, 0, first.stdout + first.stderr);
    const result = JSON.parse(first.stdout);
    assert.deepEqual(
      result.steps.map((s: { step: string; status: string }) => `${s.step}:${s.status}`),
      [
        'manifest:passed',
        'install:passed',
        'test:passed',
        'sbom:passed',
        'scan:skipped',
        'licenses:passed',
        'policy:passed',
        'artifact:passed',
      ],
    );
    assert.match(result.artifact.digest, /^sha256:[0-9a-f]{64}$/);
    const sbom = JSON.parse(readFileSync(join(app, '.microapp', 'sbom.cdx.json'), 'utf8'));
    assert.equal(sbom.specVersion, '1.6');
    const second = JSON.parse((await cli(env, 'ci', '--dir', app, '--json')).stdout);
    assert.equal(second.artifact.digest, result.artifact.digest, 'same sources, same digest');
  });

  test('a manifest change that raises the tier stops at the manifest step and goes back to review', async () => {
    const app = join(dir, 'poll');
    await cli(env, 'login', '--dev-user', 'dave@example.com');
    assert.equal((await cli(env, 'init', app, '-t', 'form', '--department', 'finance')).code, 0);
    assert.equal((await cli(env, 'register', '-f', join(app, 'microapp.yaml'))).code, 0);
    const yaml = readFileSync(join(app, 'microapp.yaml'), 'utf8').replace(
      'dataClasses: [internal]',
      'dataClasses: [internal, pii]',
    );
    writeFileSync(join(app, 'microapp.yaml'), yaml);
    const r = await cli(env, 'ci', '--dir', app);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /FAIL manifest .*pending review \(tier high\): waiting for security review and compliance review/,
    );
    const show = JSON.parse((await cli(env, 'apps', 'show', 'poll', '--json')).stdout);
    assert.equal(show.state, 'pending_review');
  });

  test('without a lockfile the install step refuses and says what to do', async () => {
    const app = join(dir, 'nolock');
    assert.equal((await cli(env, 'init', app, '-t', 'dashboard', '--owner', 'dave@example.com')).code, 0);
    unlinkSync(join(app, 'package-lock.json'));
    const r = await cli(env, 'ci', '--dir', app, '--offline');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /FAIL install .*no package-lock.json/);
    assert.match(r.stderr, /next: run `npm install` and commit package-lock.json/);
  });
});
