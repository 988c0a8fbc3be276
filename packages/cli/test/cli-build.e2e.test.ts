import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer, tokenFor, viaGateway } from '../../server/test/harness.ts';
import { cli, cliWithInput, importAdvisories } from './cli-harness.ts';

describe('microapp build: the platform builds a folder, step by step', () => {
  let server: TestServer;
  let dir: string;
  let env: Record<string, string>;
  before(async () => {
    server = await startTestServer('sqlite');
    dir = mkdtempSync(join(tmpdir(), 'microapp-cli-build-'));
    env = { MICROAPP_CONFIG_DIR: join(dir, 'config'), MICROAPP_SERVER: server.url };
    await importAdvisories(env, dir);
    await cli(env, 'login', '--dev-user', 'dave@example.com');
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('upload, build, deploy and open; the steps are shown as they finish', async () => {
    const app = join(dir, 'poll');
    assert.equal((await cli(env, 'init', app, '-t', 'form', '--department', 'finance')).code, 0);
    // Local leftovers are not uploaded.
    mkdirSync(join(app, 'node_modules', 'junk'), { recursive: true });
    writeFileSync(join(app, 'node_modules', 'junk', 'index.js'), 'throw new Error("uploaded")');
    assert.equal((await cli(env, 'register', '-f', join(app, 'microapp.yaml'))).code, 0);
    const built = await cli(env, 'build', '--dir', app, '--deploy', '--wait');
    assert.equal(built.code, 0, built.stderr);
    assert.match(built.stderr, /uploading .*poll \(\d+ KB\)/);
    assert.match(built.stderr, /\[4\/12\] ok +test/);
    assert.match(built.stderr, /\[12\/12\] ok +deploy/);
    assert.match(
      built.stdout,
      /Built poll@0\.1\.0 \(sha256:[0-9a-f]{64}\)\.\nRunning at http:\/\/poll\.apps\.localhost:\d+\//,
    );
    const dave = await tokenFor(server, 'dave@example.com');
    assert.equal((await viaGateway(server, 'poll', '/', { authorization: `Bearer ${dave}` })).status, 200);

    const list = await cli(env, 'builds', 'poll', '--json');
    const items = JSON.parse(list.stdout) as { state: string; version: string }[];
    assert.deepEqual(
      items.map((b) => `${b.state} ${b.version}`),
      ['passed 0.1.0'],
    );
  });

  test('a failing build exits 1 and names the step', async () => {
    const app = join(dir, 'poll');
    writeFileSync(
      join(app, 'test', 'extra.test.js'),
      "import { test } from 'node:test';\ntest('no', () => { throw new Error('nope'); });\n",
    );
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'poll',
        version: '0.2.0',
        private: true,
        type: 'module',
        scripts: { test: 'node --test' },
      }),
    );
    const built = await cli(env, 'build', '--dir', app, '--wait');
    assert.equal(built.code, 1);
    assert.match(built.stderr, /FAIL test/);
    assert.match(built.stdout, /The build failed: the test step failed/);
    assert.match(built.stdout, /next: fix the failing tests/);
  });

  test('usage errors exit 2 with what to do', async () => {
    const r = await cli(env, 'build', '--dir', join(dir, 'nowhere'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no microapp.yaml/);
  });

  test('connectors: an admin sets one with the credential from stdin; nobody reads the credential back', async () => {
    await cli(env, 'login', '--dev-user', 'carol@example.com');
    const set = await cliWithInput(
      env,
      'canary-credential-55aa\n',
      'connectors',
      'set',
      'ledger',
      '--base-url',
      'https://ledger.corp.example.com/api',
      '--methods',
      'get,post',
      '--paths',
      '/entries',
      '--data-classes',
      'internal,financial',
      '--credential-stdin',
    );
    assert.equal(set.code, 0, set.stderr);
    assert.match(
      set.stdout,
      /Connector ledger: GET, POST on \/entries .*\nThe credential is stored encrypted/,
    );
    const db = await cliWithInput(
      env,
      'canary-password-66bb\n',
      'connectors',
      'set',
      'orders-db',
      '--base-url',
      'postgres://microapp_roles@db.corp.example.com:5432/orders',
      '--privileges',
      'select,insert',
      '--tables',
      'public.orders,sales.refunds',
      '--lease-minutes',
      '30',
      '--data-classes',
      'internal,financial',
      '--credential-stdin',
    );
    assert.equal(db.code, 0, db.stderr);
    assert.match(
      db.stdout,
      /Connector orders-db: INSERT, SELECT on public\.orders, sales\.refunds .* own role for 30 minutes .*\n.*stored encrypted.*\n.*\/run\/secrets\/connector\.orders-db/,
    );
    const wrong = await cli(
      env,
      'connectors',
      'set',
      'orders-db',
      '--base-url',
      'postgres://u@db/orders',
      '--privileges',
      'drop',
      '--tables',
      'orders',
      '--data-classes',
      'internal',
    );
    assert.equal(wrong.code, 1, wrong.stderr);
    assert.match(wrong.stderr, /privileges/);
    const listed = await cli(env, 'connectors', 'list', '--json');
    assert.equal(JSON.parse(listed.stdout)[0].hasCredential, true);
    assert.deepEqual(JSON.parse(listed.stdout)[1].grants.tables, ['public.orders', 'sales.refunds']);
    assert.match(
      (await cli(env, 'connectors', 'list')).stdout,
      /orders-db .*INSERT,SELECT +public\.orders,sales\.refunds/,
    );
    assert.doesNotMatch(
      listed.stdout + set.stdout + set.stderr + db.stdout + db.stderr,
      /canary-credential-55aa|canary-password-66bb/,
    );
    await cli(env, 'login', '--dev-user', 'dave@example.com');
    const refused = await cli(env, 'connectors', 'remove', 'ledger');
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /admin/);
  });
});
