// The tracker template as a creator uses it: Fastify and better-sqlite3 (a native module) with their whole
// dependency trees (85 packages), built on the platform (sandboxed, through the egress broker) from a
// company mirror on a private address behind its own CA (a small registry on loopback serving the real
// packages over HTTPS), deployed, used through the gateway, and upgraded with its SQLite data kept.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gitCli, withToken } from '../../server/test/git-client.ts';
import {
  call,
  companyCa,
  startTestServer,
  type TestServer,
  tokenFor,
  viaGateway,
} from '../../server/test/harness.ts';
import { cli, importAdvisories } from './cli-harness.ts';
import { lockAgainst, packClosure, startRegistry } from './npm-registry.ts';

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
  let ca: string;
  const relock = () => lockAgainst(app, registry.url, ca);

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
    dir = mkdtempSync(join(tmpdir(), 'microapp-tracker-'));
    const pki = companyCa(dir);
    ca = pki.ca;
    // `localhost` resolves to 127.0.0.1, a private address, as a company mirror's name does.
    registry = await startRegistry(packed, { tls: { key: pki.key, cert: pki.cert }, urlHost: 'localhost' });
    // Its repository is a shared one (branches in the database, objects as packs in the blob store, as with
    // several replicas), so the change below reaches its build through that path, dependencies and all.
    server = await startTestServer('sqlite', {
      env: {
        MICROAPP_NPM_REGISTRY: `${registry.url}/`,
        MICROAPP_NPM_CA_FILE: ca,
        MICROAPP_GIT_STORE: 'shared',
      },
    });
    env = { MICROAPP_CONFIG_DIR: join(dir, 'config'), MICROAPP_SERVER: server.url };
    await importAdvisories(env, dir);
    app = join(dir, 'ledger-points');
    await cli(env, 'login', '--dev-user', 'alice@example.com');
    const made = await cli(env, 'init', app, '-t', 'tracker', '--department', 'finance');
    assert.equal(made.code, 0, made.stderr);
    const lock = await relock();
    assert.equal(lock.code, 0, lock.out);
    const registered = await cli(env, 'register', '-f', join(app, 'microapp.yaml'));
    assert.equal(registered.code, 0, registered.stderr);
  });

  after(async () => {
    await server?.stop();
    await registry?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the platform builds it through the broker from the mirror, trusting its CA, and runs its tests on SQLite', async () => {
    assert.ok(packages >= 50, `a real dependency tree: ${packages} packages`);
    const built = await cli(env, '--json', 'build', '--dir', app, '--wait');
    assert.equal(built.code, 0, built.stdout + built.stderr);
    const result = JSON.parse(built.stdout) as {
      state: string;
      steps: { step: string; status: string; detail: string }[];
    };
    assert.equal(result.state, 'passed', built.stdout);
    const step = (name: string) => result.steps.find((s) => s.step === name)!.detail;
    assert.match(step('test'), /5 tests passed/);
    assert.match(step('package'), /^\d+ production package\(s\) installed/);
    assert.ok(
      registry.requests.some((r) => r.endsWith('.tgz')),
      'installed from the mirror',
    );
    assert.equal(registry.refusedHandshakes(), 0, 'every TLS handshake trusted the company CA');
  });

  test('it runs behind the gateway, keeps items in SQLite, and keeps them across an upgrade', async () => {
    // The native module was compiled for (or shipped with) what runs: the app answers from SQLite.
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
    const locked = await relock();
    assert.equal(locked.code, 0, locked.out);
    const upgraded = await cli(env, 'build', '--dir', app, '--deploy', '--wait');
    assert.equal(upgraded.code, 0, upgraded.stdout + upgraded.stderr);
    assert.match(upgraded.stdout + upgraded.stderr, /ledger-points@0\.1\.1/);
    const kept = await viaGateway(server, 'ledger-points', '/items.json', auth);
    assert.deepEqual(
      (JSON.parse(kept.body) as { title: string }[]).map((i) => i.title),
      ['INV-20931 to match'],
    );
  });

  test('a change through its repository installs the native module from the mirror, merges and keeps the data', async () => {
    const alice = await tokenFor(server, 'alice@example.com');
    const repo = await call(server, 'GET', '/api/v1/apps/ledger-points/repository', { token: alice });
    assert.equal(repo.status, 200, repo.text);
    const clone = join(dir, 'repo');
    const cloned = await gitCli(dir, ['clone', '--quiet', withToken(repo.body.cloneUrl, alice), 'repo']);
    assert.equal(cloned.code, 0, cloned.stderr);
    // What a developer commits against the company mirror: its lockfile, and the next version.
    for (const file of ['package-lock.json', '.npmrc'])
      writeFileSync(join(clone, file), readFileSync(join(app, file)));
    for (const file of ['package.json', 'package-lock.json']) {
      const json = JSON.parse(readFileSync(join(clone, file), 'utf8'));
      json.version = '0.1.2';
      if (json.packages?.['']) json.packages[''].version = '0.1.2';
      writeFileSync(join(clone, file), `${JSON.stringify(json, null, 2)}\n`);
    }
    await gitCli(clone, ['add', '-A']);
    await gitCli(clone, ['commit', '-m', 'Lock against the company mirror']);
    const pushed = await gitCli(clone, ['push', 'origin', 'HEAD:refs/heads/mirror-lock']);
    assert.equal(pushed.code, 0, pushed.stderr);
    // The push is in the database before git answered it.
    const db = server.rawDb();
    const branches = await db.kysely.selectFrom('repo_refs').select('ref').execute();
    await db.destroy();
    assert.ok(
      branches.some((b) => b.ref === 'refs/heads/mirror-lock'),
      JSON.stringify(branches),
    );

    let change = (await call(server, 'GET', '/api/v1/apps/ledger-points/changes/1', { token: alice })).body;
    for (
      let i = 0;
      i < 1500 && change.release?.state !== 'passed' && change.release?.state !== 'failed';
      i++
    ) {
      if (change.checks[0].state === 'failed' || change.problem) break;
      await new Promise((r) => setTimeout(r, 200));
      change = (await call(server, 'GET', '/api/v1/apps/ledger-points/changes/1', { token: alice })).body;
    }
    assert.equal(change.checks[0].state, 'passed', JSON.stringify(change, null, 2));
    assert.match(change.merged?.by ?? '', /low tier, checks passed/);
    assert.equal(change.release?.state, 'passed', JSON.stringify(change, null, 2));
    assert.equal(change.release.version, '0.1.2');
    const release = await call(server, 'GET', `/api/v1/apps/ledger-points/builds/${change.release.build}`, {
      token: alice,
    });
    const step = (name: string) =>
      (release.body.steps as { step: string; detail: string }[]).find((x) => x.step === name)?.detail ?? '';
    assert.match(step('test'), /5 tests passed/);
    assert.match(step('package'), /^\d+ production package\(s\) installed/);

    const dave = await tokenFor(server, 'dave@example.com');
    const kept = await viaGateway(server, 'ledger-points', '/items.json', {
      authorization: `Bearer ${dave}`,
    });
    assert.equal(kept.status, 200, kept.body);
    assert.deepEqual(
      (JSON.parse(kept.body) as { title: string }[]).map((i) => i.title),
      ['INV-20931 to match'],
      'the merged version runs on the same data',
    );
  });
});
