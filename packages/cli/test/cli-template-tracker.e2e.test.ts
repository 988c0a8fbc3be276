// The tracker template as a creator uses it: Fastify and better-sqlite3 (a native module) with their whole
// dependency trees (85 packages), installed from a registry (a small one on loopback serving the real
// packages, as a company mirror does), built by the sandboxed pipeline, deployed, used through the gateway,
// and upgraded with its SQLite data kept.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer, tokenFor, viaGateway } from '../../server/test/harness.ts';
import { cli, importAdvisories } from './cli-harness.ts';
import { entries, npm, packClosure, startRegistry } from './npm-registry.ts';

const root = resolve(import.meta.dirname, '../../..');
const canSandbox = existsSync('/usr/bin/bwrap');

describe('the tracker template: npm dependencies and a native module, from init to an upgrade', {
  skip: !canSandbox && 'needs bubblewrap',
}, () => {
  let server: TestServer;
  let registry: Awaited<ReturnType<typeof startRegistry>>;
  let dir: string;
  let app: string;
  let env: Record<string, string>;
  let packages = 0;

  before(async () => {
    // The template pins fastify and better-sqlite3 to the versions this repository runs on, so the loopback
    // registry can serve the same code; it packs them anew, so the lockfile is made again against it.
    const template = JSON.parse(readFileSync(join(root, 'templates/tracker/package.json'), 'utf8'));
    for (const [name, version] of Object.entries(template.dependencies as Record<string, string>))
      assert.equal(
        JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version,
        version,
        `the template's ${name} is the version installed here`,
      );
    const packed = await packClosure(['fastify', 'better-sqlite3']);
    packages = packed.length;
    registry = await startRegistry(packed);
    server = await startTestServer('sqlite');
    dir = mkdtempSync(join(tmpdir(), 'microapp-tracker-'));
    env = { MICROAPP_CONFIG_DIR: join(dir, 'config'), MICROAPP_SERVER: server.url };
    await importAdvisories(env, dir);
    app = join(dir, 'ledger-points');
    await cli(env, 'login', '--dev-user', 'alice@example.com');
    const made = await cli(env, 'init', app, '-t', 'tracker', '--department', 'finance');
    assert.equal(made.code, 0, made.stderr);
    writeFileSync(join(app, '.npmrc'), `registry=${registry.url}/\n`);
    unlinkSync(join(app, 'package-lock.json'));
    const lock = await npm(
      ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'],
      app,
    );
    assert.equal(lock.code, 0, lock.out);
    const registered = await cli(env, 'register', '-f', join(app, 'microapp.yaml'));
    assert.equal(registered.code, 0, registered.stderr);
  });

  after(async () => {
    await server?.stop();
    await registry?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("the sandboxed pipeline runs the template's tests on SQLite and ships the production dependencies", async () => {
    assert.ok(packages >= 50, `a real dependency tree: ${packages} packages`);
    const ci = await cli(env, '--json', 'ci', '--dir', app, '--sandbox', '--work', join(dir, 'work-1'));
    assert.equal(ci.code, 0, ci.stdout + ci.stderr);
    const result = JSON.parse(ci.stdout) as {
      steps: { step: string; status: string; detail: string }[];
      artifact: { file: string };
    };
    assert.match(result.steps.find((s) => s.step === 'test')!.detail, /5 tests passed/);
    assert.match(
      result.steps.find((s) => s.step === 'package')!.detail,
      /\d+ production package\(s\) installed/,
    );
    const files = entries(result.artifact.file);
    assert.ok(files.includes('node_modules/fastify/package.json'), 'fastify ships');
    assert.ok(
      files.includes('node_modules/better-sqlite3/build/Release/better_sqlite3.node'),
      'the native module ships',
    );
    assert.ok(
      !files.some((f) => f.startsWith('data/') || f.startsWith('.microapp/')),
      'no local data and no outputs of earlier runs',
    );
    assert.ok(
      registry.requests.some((r) => r.endsWith('.tgz')),
      'installed from the registry',
    );
  });

  test('it runs behind the gateway, keeps items in SQLite, and keeps them across an upgrade', async () => {
    const deployed = await cli(env, 'deploy', 'ledger-points');
    assert.equal(deployed.code, 0, deployed.stdout + deployed.stderr);
    const dave = await tokenFor(server, 'dave@example.com');
    const auth = { authorization: `Bearer ${dave}` };
    const empty = await viaGateway(server, 'ledger-points', '/items.json', auth);
    assert.equal(empty.status, 200, empty.body);
    assert.deepEqual(JSON.parse(empty.body), []);
    const saved = await viaGateway(
      server,
      'ledger-points',
      '/items',
      { ...auth, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      { method: 'POST', body: 'title=INV-20931+to+match' },
    );
    assert.equal(saved.status, 201, saved.body);
    assert.equal(JSON.parse(saved.body).created_by, 'dave@example.com', 'the identity the gateway signed');
    const page = await viaGateway(server, 'ledger-points', '/', auth);
    assert.match(page.body, /INV-20931 to match/);

    // Version 0.1.1: new code, the same data volume.
    const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8'));
    writeFileSync(join(app, 'package.json'), JSON.stringify({ ...pkg, version: '0.1.1' }, null, 2));
    const relock = await npm(
      ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'],
      app,
    );
    assert.equal(relock.code, 0, relock.out);
    const ci = await cli(env, 'ci', '--dir', app, '--sandbox', '--work', join(dir, 'work-2'));
    assert.equal(ci.code, 0, ci.stdout + ci.stderr);
    const upgraded = await cli(env, 'deploy', 'ledger-points');
    assert.equal(upgraded.code, 0, upgraded.stdout + upgraded.stderr);
    assert.match(upgraded.stdout + upgraded.stderr, /0\.1\.1/);
    const kept = await viaGateway(server, 'ledger-points', '/items.json', auth);
    assert.deepEqual(
      (JSON.parse(kept.body) as { title: string }[]).map((i) => i.title),
      ['INV-20931 to match'],
    );
  });
});
