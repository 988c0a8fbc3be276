import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gitCli } from '../../server/test/git-client.ts';
import { startTestServer, type TestServer } from '../../server/test/harness.ts';
import { cli, cliWithInput } from './cli-harness.ts';

const claimsYaml = `name: travel-claims
owner: alice@example.com
purpose: Collect travel expense claims for the monthly close
dataClasses: [internal, confidential]
runtime: { kind: node, entry: server.js }
template: { name: form, version: 1.1.0 }
`;

/** The repository commands a creator and a reviewer type: clone with their login, push, list, review. */
describe('app repositories from the CLI', () => {
  let server: TestServer;
  let dir: string;
  let env: Record<string, string>;
  const ok = async (...args: string[]) => {
    const r = await cli(env, ...args);
    assert.equal(r.code, 0, `microapp ${args.join(' ')}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  before(async () => {
    server = await startTestServer('sqlite');
    dir = mkdtempSync(join(tmpdir(), 'microapp-cli-repos-'));
    env = { MICROAPP_CONFIG_DIR: join(dir, 'config'), MICROAPP_SERVER: server.url };
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('clone with the login, push a branch, see the change, review it', async () => {
    await ok('login', '--dev-user', 'alice@example.com');
    writeFileSync(join(dir, 'claims.yaml'), claimsYaml);
    await ok('register', '-f', join(dir, 'claims.yaml'));
    const shown = await ok('repo', 'show', 'travel-claims');
    assert.match(shown, new RegExp(`travel-claims: ${server.url}/git/travel-claims\\.git`));
    // The repository is made from the form template as the platform ships it now, and says which version.
    const shipped = JSON.parse(
      readFileSync(join(import.meta.dirname, '../../../templates/form/template.json'), 'utf8'),
    ).version;
    assert.ok(shown.includes(`Made from template form ${shipped}. You can push branches`), shown);
    assert.match(shown, /Create travel-claims from the template form/);

    const clone = join(dir, 'travel-claims');
    assert.match(await ok('repo', 'clone', 'travel-claims', clone), /Cloned travel-claims into/);
    assert.doesNotMatch(readFileSync(join(clone, '.git', 'config'), 'utf8'), /mat_/, 'no token in the clone');
    writeFileSync(join(clone, 'README.md'), 'Travel claims, with the cost centre.\n');
    await gitCli(clone, ['commit', '-am', 'Mention the cost centre']);
    // git signs in through `microapp git-credential`, with alice's login.
    const push = await gitCli(clone, ['push', 'origin', 'HEAD:refs/heads/cost-centre']);
    assert.equal(push.code, 0, push.stderr);

    const list = await ok('changes', 'list', 'travel-claims');
    assert.match(
      list,
      /1\s+Mention the cost centre\s+cost-centre\s+alice@example\.com\s+checks failed: .*pending review/,
    );
    const json = JSON.parse(await ok('--json', 'changes', 'show', 'travel-claims', '1'));
    assert.deepEqual(
      json.diff.files.map((f: { path: string }) => f.path),
      ['README.md'],
    );

    // The helper answers only for the platform it belongs to.
    const evil = await cliWithInput(
      env,
      'protocol=https\nhost=evil.example.com\n\n',
      'git-credential',
      'get',
    );
    assert.equal(evil.code, 0);
    assert.equal(evil.stdout, '');
    const own = await cliWithInput(
      env,
      `protocol=http\nhost=${new URL(server.url).host}\n\n`,
      'git-credential',
      'get',
    );
    assert.match(own.stdout, /^username=token\npassword=mat_/);

    const notMine = await cli(env, 'changes', 'approve', 'travel-claims', '1');
    assert.equal(notMine.code, 1);
    assert.match(notMine.stderr, /error: this needs one of the roles: reviewer/);
    const gitopsRefused = await cli(env, 'gitops', 'show');
    assert.equal(gitopsRefused.code, 1);

    await ok('login', '--dev-user', 'bob@example.com');
    assert.match(
      await ok('changes', 'approve', 'travel-claims', '1', '--comment', 'fine by me'),
      /travel-claims #1: checks failed/,
    );
    assert.match(
      await ok('changes', 'show', 'travel-claims', '1', '--no-diff'),
      /bob@example\.com approved [0-9a-f]{12}: fine by me/,
    );
    const needs = await cli(env, 'changes', 'request-changes', 'travel-claims', '1');
    assert.equal(needs.code, 2);
    assert.match(await ok('gitops', 'show'), new RegExp(`${server.url}/git/_gitops\\.git \\(branch main`));
  });
});
