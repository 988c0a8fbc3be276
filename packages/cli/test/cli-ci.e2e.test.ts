import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../../server/test/harness.ts';
import { cli, sh } from './cli-harness.ts';

describe('microapp ci: from init to a deterministic artifact, as a new user would', () => {
  let server: TestServer;
  let dir: string;
  let env: Record<string, string>;
  before(async () => {
    server = await startTestServer('sqlite');
    dir = mkdtempSync(join(tmpdir(), 'microapp-ci-'));
    env = { MICROAPP_CONFIG_DIR: join(dir, 'config'), MICROAPP_SERVER: server.url };
    // The platform's advisory data: an admin imports it once (scans fail closed without it).
    const osv = join(dir, 'osv-initial');
    mkdirSync(osv);
    writeFileSync(
      join(osv, 'GHSA-other.json'),
      JSON.stringify({
        id: 'GHSA-other',
        affected: [{ package: { ecosystem: 'npm', name: 'left-pad' }, versions: ['0.0.1'] }],
      }),
    );
    await cli(env, 'login', '--dev-user', 'carol@example.com');
    const imported = await cli(env, 'advisories', 'import', osv);
    assert.equal(imported.code, 0, imported.stderr);
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
        'package:passed',
        'sbom:passed',
        'scan:passed',
        'licenses:passed',
        'policy:passed',
        'artifact:passed',
        'publish:passed',
      ],
    );
    assert.match(result.artifact.digest, /^sha256:[0-9a-f]{64}$/);
    const sbom = JSON.parse(readFileSync(join(app, '.microapp', 'sbom.cdx.json'), 'utf8'));
    assert.equal(sbom.specVersion, '1.6');
    const second = JSON.parse((await cli(env, 'ci', '--dir', app, '--json')).stdout);
    assert.equal(second.artifact.digest, result.artifact.digest, 'same sources, same digest');
  });

  test('a vulnerable dependency fails the scan with the advisory, package and versions; an exception lets it through', async () => {
    const app = join(dir, 'recon');
    // An OSV record for a local package, imported by an admin from a folder.
    const osvDir = join(dir, 'osv');
    mkdirSync(osvDir);
    writeFileSync(
      join(osvDir, 'GHSA-vuln-0001.json'),
      JSON.stringify({
        id: 'GHSA-vuln-0001',
        aliases: ['CVE-2026-1111'],
        affected: [
          {
            package: { ecosystem: 'npm', name: 'vuln-lib' },
            ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '1.0.5' }] }],
          },
        ],
        database_specific: { severity: 'HIGH' },
      }),
    );
    await cli(env, 'login', '--dev-user', 'carol@example.com');
    const imported = await cli(env, 'advisories', 'import', osvDir);
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stdout, /1 added, 0 updated/);

    // vuln-lib@1.0.0 as a local tarball: installed by `npm ci` from the lockfile, no registry needed.
    const lib = join(dir, 'vuln-lib');
    mkdirSync(join(app, 'vendor'), { recursive: true });
    mkdirSync(lib);
    writeFileSync(
      join(lib, 'package.json'),
      JSON.stringify({ name: 'vuln-lib', version: '1.0.0', license: 'MIT', main: 'index.js' }),
    );
    writeFileSync(join(lib, 'index.js'), 'module.exports = 1;\n');
    assert.equal((await sh('npm', ['pack', '--pack-destination', join(app, 'vendor')], lib)).code, 0);
    const installed = await sh(
      'npm',
      ['install', './vendor/vuln-lib-1.0.0.tgz', '--no-audit', '--no-fund', '--offline', '--ignore-scripts'],
      app,
    );
    assert.equal(installed.code, 0, installed.output);

    await cli(env, 'login', '--dev-user', 'alice@example.com');
    const failed = await cli(env, 'ci', '--dir', app);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /FAIL scan .*1 finding\(s\) at or above high for a high-tier app/);
    assert.match(failed.stderr, /GHSA-vuln-0001 \(high\) in vuln-lib@1\.0\.0, fixed in 1\.0\.5/);
    assert.match(failed.stderr, /npm install vuln-lib@1\.0\.5/, 'a direct dependency: npm install');

    await cli(env, 'login', '--dev-user', 'bob@example.com');
    const expires = new Date(Date.now() + 14 * 86_400_000).toISOString().slice(0, 10);
    const excepted = await cli(
      env,
      'advisories',
      'except',
      'recon',
      '--advisory',
      'GHSA-vuln-0001',
      '--package',
      'vuln-lib',
      '--reason',
      'only used by a test fixture',
      '--expires',
      expires,
    );
    assert.equal(excepted.code, 0, excepted.stderr);
    assert.match(excepted.stdout, /Exception exc_\w+: GHSA-vuln-0001 in vuln-lib of recon/);
    const listed = await cli(env, '--json', 'advisories', 'exceptions', 'recon');
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(
      JSON.parse(listed.stdout).items.map((e: { advisory: string; state: string }) => [e.advisory, e.state]),
      [['GHSA-vuln-0001', 'live']],
    );
    await cli(env, 'login', '--dev-user', 'alice@example.com');
    const sameVersion = await cli(env, 'ci', '--dir', app);
    assert.equal(sameVersion.code, 1, 'new content under a published version is refused');
    assert.match(sameVersion.stderr, /ok {3}scan .*1 under an exception/);
    assert.match(sameVersion.stderr, /FAIL publish .*already published .*bump the version/);
    const pkgFile = join(app, 'package.json');
    writeFileSync(pkgFile, readFileSync(pkgFile, 'utf8').replace('"version": "0.1.0"', '"version": "0.2.0"'));
    const passed = await cli(env, 'ci', '--dir', app);
    assert.equal(passed.code, 0, passed.stderr);
    assert.match(passed.stderr, /ok {3}publish .*recon@0\.2\.0/);

    // A deploy scans the version again: under the live exception the scan lets it through; once the
    // exception is revoked, the same signed version is refused, naming the finding.
    const live = await cli(env, 'deploy', 'recon@0.2.0');
    assert.doesNotMatch(live.stdout + live.stderr, /block a high-tier app today/);
    await cli(env, 'login', '--dev-user', 'bob@example.com');
    const exceptionId = JSON.parse((await cli(env, '--json', 'advisories', 'exceptions', 'recon')).stdout)
      .items[0].id;
    const revoked = await cli(env, 'advisories', 'revoke', 'recon', exceptionId);
    assert.equal(revoked.code, 0, revoked.stderr);
    await cli(env, 'login', '--dev-user', 'alice@example.com');
    const refused = await cli(env, 'deploy', 'recon@0.2.0');
    assert.notEqual(refused.code, 0);
    assert.match(
      refused.stderr,
      /recon@0\.2\.0 has 1 finding\(s\) that block a high-tier app today: GHSA-vuln-0001 in vuln-lib@1\.0\.0/,
    );
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

  test('install scripts run only for packages the organization policy allows', async () => {
    const app = join(dir, 'scripts-app');
    await cli(env, 'login', '--dev-user', 'dave@example.com');
    assert.equal((await cli(env, 'init', app, '-t', 'dashboard', '--department', 'finance')).code, 0);
    assert.equal((await cli(env, 'register', '-f', join(app, 'microapp.yaml'))).code, 0);
    const lib = join(dir, 'script-lib');
    mkdirSync(lib);
    mkdirSync(join(app, 'vendor'));
    writeFileSync(
      join(lib, 'package.json'),
      JSON.stringify({
        name: 'script-lib',
        version: '1.0.0',
        license: 'MIT',
        scripts: { install: "node -e \"require('fs').writeFileSync('built.txt', '1')\"" },
      }),
    );
    assert.equal((await sh('npm', ['pack', '--pack-destination', join(app, 'vendor')], lib)).code, 0);
    assert.equal(
      (
        await sh(
          'npm',
          [
            'install',
            './vendor/script-lib-1.0.0.tgz',
            '--no-audit',
            '--no-fund',
            '--offline',
            '--ignore-scripts',
          ],
          app,
        )
      ).code,
      0,
    );
    const built = join(app, 'node_modules', 'script-lib', 'built.txt');

    const off = await cli(env, 'ci', '--dir', app, '--no-publish');
    assert.equal(off.code, 0, off.stderr);
    assert.match(off.stderr, /install scripts not run for script-lib \(not allowed by policy\)/);
    assert.ok(!existsSync(built));

    await cli(env, 'login', '--dev-user', 'carol@example.com');
    const org = join(dir, 'org-scripts');
    mkdirSync(org);
    writeFileSync(
      join(org, 'data.json'),
      JSON.stringify({ microapp: { config: { allowed_install_scripts: ['script-lib'] } } }),
    );
    writeFileSync(
      join(org, 'scripts.rego'),
      'package microapp.org.scripts\n\nimport rego.v1\n\ntest_listed if "script-lib" in data.microapp.config.allowed_install_scripts\n',
    );
    const pushed = await cli(env, 'policy', 'push', org);
    assert.equal(pushed.code, 0, pushed.stderr);
    await cli(env, 'login', '--dev-user', 'dave@example.com');
    const on = await cli(env, 'ci', '--dir', app, '--no-publish');
    assert.equal(on.code, 0, on.stderr);
    assert.match(on.stderr, /install scripts run for script-lib \(allowed by policy\)/);
    assert.ok(existsSync(built), 'the allowed install script ran');
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
