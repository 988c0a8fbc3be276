import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../../server/test/harness.ts';
import { cli } from './cli-harness.ts';

const orgPolicy = `package microapp.org.egress

import rego.v1

deny contains sprintf("org policy: uploads to %s are not allowed", [host]) if {
	some host in object.get(input.manifest, ["integrations", "egress"], [])
	endswith(host, ".fileshare.example.com")
}

test_denies_fileshare if count(deny) == 1 with input as {"manifest": {"integrations": {"egress": ["eu.fileshare.example.com"]}}}
`;

describe('microapp policy, as a platform admin uses it', () => {
  let server: TestServer;
  let dir: string;
  let env: Record<string, string>;
  before(async () => {
    server = await startTestServer('sqlite');
    dir = mkdtempSync(join(tmpdir(), 'microapp-policy-'));
    env = { MICROAPP_CONFIG_DIR: join(dir, 'config'), MICROAPP_SERVER: server.url };
    mkdirSync(join(dir, 'org'));
    writeFileSync(join(dir, 'org', 'egress.rego'), orgPolicy);
    mkdirSync(join(dir, 'broken'));
    writeFileSync(
      join(dir, 'broken', 'egress.rego'),
      orgPolicy.replace('count(deny) == 1', 'count(deny) == 3'),
    );
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('test: the built-in packs and a folder pass; a failing test exits 1', async () => {
    const ok = await cli(env, 'policy', 'test', join(dir, 'org'), '--verbose');
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^data\.microapp\.org\.egress\.test_denies_fileshare: PASS \(/m);
    // Only the named folder's tests run, as with opa test DIR; the packs are there for it to use.
    assert.match(ok.stdout, /^PASS: 1\/1$/m);
    const bad = await cli(env, 'policy', 'test', join(dir, 'broken'), '--no-builtin');
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /^FAILURES$/m);
    assert.match(bad.stdout, /^data\.microapp\.org\.egress\.test_denies_fileshare: FAIL \(/m);
    assert.match(bad.stdout, /^FAIL: 1\/1$/m);
  });

  test('test: the seed policy (Rego v0) and its tests beside it in one package, as opa test --v0-compatible runs them', async () => {
    const seedDir = join(dir, 'seed');
    mkdirSync(seedDir);
    writeFileSync(
      join(seedDir, 'network.rego'),
      `package microapp.network

blacklisted_domains = {"suspicious.example.com", "unsafe.example.org"}

deny[msg] {
  input.request.method == "deploy"
  host := input.request.host
  blacklisted_domains[host]
  msg = sprintf("deployment denied: host %v is blacklisted", [host])
}

unused(x) = y {
  y := x + 1
}
`,
    );
    writeFileSync(
      join(seedDir, 'network_test.rego'),
      `package microapp.network

test_blocked {
  deny["deployment denied: host suspicious.example.com is blacklisted"] with input as {"request": {"method": "deploy", "host": "suspicious.example.com"}}
}

test_bank_passes {
  print("deny has", count(deny))
  count(deny) == 0 with input as {"request": {"method": "deploy", "host": "api.bank.example.com"}}
}

todo_test_later {
  false
}
`,
    );
    const run = await cli(env, 'policy', 'test', seedDir, '--no-builtin');
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^PASS: 2\/3$/m);
    assert.match(run.stdout, /^SKIPPED: 1\/3$/m);
    assert.match(run.stderr, /seed\/network\.rego, seed\/network_test\.rego are Rego v0/);
    assert.match(run.stderr, /opa test --v0-compatible/);

    const only = await cli(env, 'policy', 'test', seedDir, '--no-builtin', '-r', 'bank', '-v');
    assert.match(only.stdout, /test_bank_passes: PASS/);
    assert.doesNotMatch(only.stdout, /test_blocked/);
    assert.match(only.stdout, /^ {2}deny has 0$/m, 'verbose shows what a test printed');

    const cov = await cli(env, 'policy', 'test', seedDir, '--no-builtin', '--coverage', '--json');
    const report = JSON.parse(cov.stdout) as {
      coverage: {
        files: Record<string, { not_covered?: { start: { row: number }; end: { row: number } }[] }>;
      };
    };
    // The function nobody calls (rows 12-13) is the only part of the policy no test reached.
    assert.deepEqual(report.coverage.files['seed/network.rego']?.not_covered, [
      { start: { row: 12 }, end: { row: 13 } },
    ]);
    const below = await cli(
      env,
      'policy',
      'test',
      seedDir,
      '--no-builtin',
      '--coverage',
      '--threshold',
      '95',
    );
    assert.equal(below.code, 2);
    assert.match(below.stderr, /below the threshold of 95%/);

    const badRegex = await cli(env, 'policy', 'test', seedDir, '-r', '(');
    assert.equal(badRegex.code, 2);
    assert.match(badRegex.stderr, /--run \( is not a regular expression/);
  });

  test('eval: the seed policy denies suspicious.example.com and allows the bank API', async () => {
    const input = join(dir, 'deploy.json');
    writeFileSync(input, JSON.stringify({ request: { method: 'deploy', host: 'suspicious.example.com' } }));
    const denied = await cli(
      env,
      'policy',
      'eval',
      '--entrypoint',
      'microapp/network/deny',
      '--input',
      input,
      '--json',
    );
    assert.equal(denied.code, 0, denied.stderr);
    assert.deepEqual(JSON.parse(denied.stdout).result, [
      'deployment denied: host suspicious.example.com is blacklisted',
    ]);
    writeFileSync(input, JSON.stringify({ request: { method: 'deploy', host: 'api.bank.example.com' } }));
    const allowed = await cli(env, 'policy', 'eval', '-e', 'microapp/network/deny', '-i', input, '--json');
    assert.deepEqual(JSON.parse(allowed.stdout).result, []);
  });

  test('push: an admin pushes, the next registration that uses the host is denied with the policy message', async () => {
    assert.equal((await cli(env, 'login', '--dev-user', 'carol@example.com')).code, 0);
    const refused = await cli(env, 'policy', 'push', join(dir, 'broken'));
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /refused/);
    const pushed = await cli(env, 'policy', 'push', join(dir, 'org'), '-m', 'no file shares');
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.match(pushed.stdout, /revision 1/);
    assert.equal((await cli(env, 'login', '--dev-user', 'dave@example.com')).code, 0);
    const manifest = join(dir, 'microapp.yaml');
    writeFileSync(
      manifest,
      'name: share-it\nowner: dave@example.com\npurpose: Share monthly reports with auditors\ndataClasses: [internal]\nintegrations:\n  egress: [eu.fileshare.example.com]\n',
    );
    const reg = await cli(env, 'register', '-f', manifest);
    assert.equal(reg.code, 1);
    assert.match(reg.stderr, /org policy: uploads to eu\.fileshare\.example\.com are not allowed/);
  });

  test('bundle: an OPA bundle with a manifest, built the same way twice', async () => {
    const a = join(dir, 'a.tar.gz');
    const b = join(dir, 'b.tar.gz');
    assert.equal((await cli(env, 'policy', 'bundle', join(dir, 'org'), '-o', a, '--revision', 'r1')).code, 0);
    assert.equal((await cli(env, 'policy', 'bundle', join(dir, 'org'), '-o', b, '--revision', 'r1')).code, 0);
    const digest = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
    assert.equal(digest(a), digest(b));
    const list = await new Promise<string>((done) => execFile('tar', ['tzf', a], (_e, out) => done(out)));
    for (const f of ['.manifest', 'data.json', 'org/egress.rego', 'network/network.rego'])
      assert.ok(list.split('\n').includes(f), f);
    const manifest = await new Promise<string>((done) =>
      execFile('tar', ['xzf', a, '-O', '.manifest'], (_e, out) => done(out)),
    );
    const parsed = JSON.parse(manifest);
    assert.equal(parsed.revision, 'r1');
    assert.equal(parsed.rego_version, 1);
    assert.equal(parsed.file_rego_versions['/network/network.rego'], 0, 'the seed policy is v0 syntax');
  });
});
