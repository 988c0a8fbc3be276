import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { create } from 'tar';
import {
  bankReconciliation,
  buildFinished,
  call,
  lunchPoll,
  people,
  type signInEveryone,
  sourceArchive,
  startBuildServer,
  type TestServer,
  viaGateway,
} from './harness.ts';

type Build = {
  id: string;
  state: string;
  steps: { step: string; status: string; detail: string }[];
  version: string;
  error: string | null;
  url: string | null;
};

/** Builds on the platform: the console's Deploy and `microapp build` run the real pipeline, sandboxed. */
describe('platform builds', () => {
  let server: TestServer;
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  let dir: string;
  let stop: () => Promise<void>;

  before(async () => {
    ({ server, t, dir, stop } = await startBuildServer());
    const formApp = lunchPoll({
      name: 'training-survey',
      owner: people.alice,
      purpose: 'Ask the team which training they want next quarter',
      runtime: { kind: 'node', entry: 'server.js' },
      template: { name: 'form', version: '1.1.0' },
    });
    const reg = await call(server, 'POST', '/api/v1/apps', { token: t.alice, body: formApp });
    assert.equal(reg.body.app.state, 'approved', reg.text);
  });
  after(async () => {
    await stop();
  });

  const finished = (name: string, id: string, token: string) => buildFinished(server, name, id, token);
  const archive = sourceArchive;

  test('a form app is built from its template with the builder’s questions, signed, deployed and answers', async () => {
    const fields = [
      { id: 'course', label: 'Which course would help you most?', required: true, max: 200 },
      { id: 'when', label: 'Which month suits you?', required: false, max: 20 },
    ];
    const res = await call<Build>(server, 'POST', '/api/v1/apps/training-survey/builds', {
      token: t.alice,
      body: { fields, deploy: true },
    });
    assert.equal(res.status, 202, res.text);
    assert.match(res.headers.get('location') ?? '', /^\/api\/v1\/apps\/training-survey\/builds\/bld_/);
    const build = await finished('training-survey', res.body.id, t.alice);
    assert.equal(build.state, 'passed', JSON.stringify(build, null, 2));
    assert.deepEqual(
      build.steps.map((s) => `${s.step}:${s.status}`),
      [
        'source:passed',
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
        'deploy:passed',
      ],
    );
    assert.equal(build.version, '0.1.0');
    assert.match(build.url ?? '', /^http:\/\/training-survey\.apps\.localhost:\d+\/$/);
    const page = await viaGateway(server, 'training-survey', '/', { authorization: `Bearer ${t.dave}` });
    assert.equal(page.status, 200, page.body);
    assert.match(page.body, /Which course would help you most\?/);
    assert.doesNotMatch(page.body, /Your name/, 'the template’s own questions were replaced');

    // The version is signed and verifiable like any other; the build's token is revoked.
    // Anyone who may see the app can check the version as a third party would; a changed byte fails it.
    const checked = await call(server, 'GET', '/api/v1/apps/training-survey/versions/0.1.0/verification', {
      token: t.bob,
    });
    assert.equal(checked.body.ok, true, checked.text);
    assert.deepEqual(
      checked.body.checks.map((c: { check: string; ok: boolean }) => c.ok),
      checked.body.checks.map(() => true),
    );
    assert.ok(checked.body.checks.length >= 4, checked.text);
    const stored = join(
      server.dataDir,
      'artifacts',
      'sha256',
      `${build.steps.find((x) => x.step === 'artifact')!.detail.slice(7, 71)}.tar.gz`,
    );
    const original = readFileSync(stored);
    const tampered = Buffer.from(original);
    const last = tampered.length - 1;
    tampered.writeUInt8(tampered.readUInt8(last) ^ 0xff, last);
    writeFileSync(stored, tampered);
    try {
      const broken = await call(server, 'GET', '/api/v1/apps/training-survey/versions/0.1.0/verification', {
        token: t.bob,
      });
      assert.equal(broken.body.ok, false);
      assert.equal(
        broken.body.checks.find((c: { check: string }) => c.check === 'artifact signature')?.ok,
        false,
      );
    } finally {
      writeFileSync(stored, original);
    }
    const versions = await call(server, 'GET', '/api/v1/apps/training-survey/versions', { token: t.alice });
    assert.equal(versions.body.items[0].version, '0.1.0');
    assert.equal(versions.body.items[0].publishedBy, people.alice);
    const db = server.rawDb();
    try {
      const tokens = await db.kysely
        .selectFrom('api_tokens')
        .select(['name', 'revoked_at'])
        .where('name', 'like', 'platform build %')
        .execute();
      assert.equal(tokens.length, 1);
      assert.ok(tokens[0]!.revoked_at, 'the build token is revoked when the build ends');
    } finally {
      await db.destroy();
    }
    const audit = await call(server, 'GET', '/api/v1/audit/events?app=training-survey&action=build.', {
      token: t.ivan,
    });
    assert.deepEqual(
      audit.body.items.map((e: { action: string }) => e.action),
      ['build.requested', 'build.passed'],
    );

    // The next build of the same app publishes the next version.
    const again = await call<Build>(server, 'POST', '/api/v1/apps/training-survey/builds', {
      token: t.alice,
      body: { fields, deploy: false },
    });
    const second = await finished('training-survey', again.body.id, t.alice);
    assert.equal(second.state, 'passed', second.error ?? '');
    assert.equal(second.version, '0.1.1');
    assert.equal(second.url, null, 'not deployed: not asked to');
  });

  test("an uploaded app's tests run without network and under the app's seccomp filter", async () => {
    const app = lunchPoll({ name: 'net-probe', owner: people.alice });
    assert.equal((await call(server, 'POST', '/api/v1/apps', { token: t.alice, body: app })).status, 201);
    const port = new URL(server.url).port;
    const source = await archive({
      'microapp.yaml': `name: net-probe\nowner: alice@example.com\npurpose: ${app.purpose}\ndataClasses: [internal]\naudience: { department: finance, maxUsers: 50 }\n`,
      'package.json': JSON.stringify({
        name: 'net-probe',
        version: '2.0.0',
        private: true,
        scripts: { test: 'node --test' },
      }),
      'package-lock.json': JSON.stringify({
        name: 'net-probe',
        version: '2.0.0',
        lockfileVersion: 3,
        requires: true,
        packages: { '': { name: 'net-probe', version: '2.0.0' } },
      }),
      'server.js': "require('node:http').createServer((q, s) => s.end('ok')).listen(process.env.PORT);\n",
      // The test passes only if the platform cannot be reached: with network, the build would fail.
      'test/net.test.js': `const { test } = require('node:test');\nconst net = require('node:net');\ntest('no network', () => new Promise((resolve, reject) => {\n  const s = net.connect(${port}, '127.0.0.1');\n  s.on('connect', () => reject(new Error('reached the platform from a build')));\n  s.on('error', () => resolve());\n}));\n`,
      // And only if it cannot make a namespace of its own (the seccomp filter refuses unshare and clone with
      // namespace flags): without the filter, `unshare -U` succeeds inside bubblewrap's sandbox.
      'test/seccomp.test.js': `const { test } = require('node:test');\nconst assert = require('node:assert');\nconst { spawnSync } = require('node:child_process');\ntest('no new namespaces', () => {\n  const r = spawnSync('unshare', ['-U', 'true'], { encoding: 'utf8' });\n  assert.notEqual(r.status, 0, 'unshare -U worked inside the build sandbox');\n  assert.match(r.stderr, /Operation not permitted/);\n});\n`,
    });
    const res = await call<Build>(server, 'POST', '/api/v1/apps/net-probe/builds', {
      token: t.alice,
      body: { source },
    });
    assert.equal(res.status, 202, res.text);
    const build = await finished('net-probe', res.body.id, t.alice);
    assert.equal(build.state, 'passed', JSON.stringify(build.steps, null, 2) + build.error);
    assert.equal(build.version, '2.0.0');
    assert.match(build.steps.find((s) => s.step === 'test')!.detail, /2 tests passed/);
  });

  test('a failing test stops the build at that step, with the reason', async () => {
    const app = lunchPoll({ name: 'broken', owner: people.alice });
    await call(server, 'POST', '/api/v1/apps', { token: t.alice, body: app });
    const source = await archive({
      'microapp.yaml': `name: broken\nowner: alice@example.com\npurpose: ${app.purpose}\ndataClasses: [internal]\naudience: { department: finance, maxUsers: 50 }\n`,
      'package.json': JSON.stringify({
        name: 'broken',
        version: '1.0.0',
        private: true,
        scripts: { test: 'node --test' },
      }),
      'package-lock.json': JSON.stringify({
        name: 'broken',
        version: '1.0.0',
        lockfileVersion: 3,
        packages: { '': { name: 'broken', version: '1.0.0' } },
      }),
      'test/bad.test.js': "require('node:test')('fails', () => { throw new Error('the sum is wrong'); });\n",
    });
    const res = await call<Build>(server, 'POST', '/api/v1/apps/broken/builds', {
      token: t.alice,
      body: { source },
    });
    const build = await finished('broken', res.body.id, t.alice);
    assert.equal(build.state, 'failed');
    assert.match(build.error ?? '', /the test step failed/);
    assert.equal(build.steps.at(-1)?.step, 'test');
    const versions = await call(server, 'GET', '/api/v1/apps/broken/versions', { token: t.alice });
    assert.deepEqual(versions.body.items, [], 'nothing was published');
  });

  test('refusals: who may build, what state, what source; a refused request writes nothing', async () => {
    const count = async () => {
      const db = server.rawDb();
      try {
        return Number(
          (
            await db.kysely
              .selectFrom('builds')
              .select((eb) => eb.fn.countAll().as('n'))
              .executeTakeFirst()
          )?.n,
        );
      } finally {
        await db.destroy();
      }
    };
    const before = await count();
    const post = (token: string, name: string, body: unknown) =>
      call(server, 'POST', `/api/v1/apps/${name}/builds`, { token, body });
    assert.equal((await post(t.frank, 'training-survey', {})).status, 404, 'another department');
    assert.equal((await post(t.bob, 'training-survey', {})).status, 403, 'a reviewer is not the owner');
    await call(server, 'POST', '/api/v1/apps', { token: t.alice, body: bankReconciliation() });
    const pending = await post(t.alice, 'bank-reconciliation', {});
    assert.equal(pending.status, 409);
    assert.match(pending.body.detail, /pending review/);
    const dup = await post(t.alice, 'training-survey', {
      fields: [
        { id: 'a', label: 'A', required: true, max: 10 },
        { id: 'a', label: 'B', required: true, max: 10 },
      ],
    });
    assert.equal(dup.status, 400, dup.text);
    assert.match(dup.body.detail, /used twice/);
    const reserved = await post(t.alice, 'training-survey', {
      fields: [{ id: 'by', label: 'By', required: true, max: 10 }],
    });
    assert.equal(reserved.status, 400);
    const badId = await post(t.alice, 'training-survey', {
      fields: [{ id: '../x', label: 'X', required: true, max: 10 }],
    });
    assert.equal(badId.status, 400);
    const html = await post(t.alice, 'training-survey', {
      fields: [{ id: 'x', label: 'X', required: true, max: 10, script: '<b>' }],
    });
    assert.equal(html.status, 400, 'unknown keys are refused');
    const notGzip = await post(t.alice, 'net-probe', {
      source: Buffer.from('not an archive').toString('base64'),
    });
    assert.equal(notGzip.status, 400);
    assert.match(notGzip.body.detail, /gzip/);
    assert.equal(await count(), before, 'no build was recorded for a refused request');
  });

  test('archives that reach outside the build folder or hold links are refused whole', async () => {
    writeFileSync(join(dir, 'outside.txt'), 'x');
    // A ../ entry: tar keeps it when asked to preserve paths, as an attacker's archive would.
    const root = mkdtempSync(join(dir, 'evil-'));
    writeFileSync(join(root, 'package.json'), '{}');
    const evil = `${root}.tar.gz`;
    await create({ gzip: true, cwd: root, file: evil, preservePaths: true }, [
      'package.json',
      '../outside.txt',
    ]);
    const linkRoot = mkdtempSync(join(dir, 'link-'));
    symlinkSync('/etc/passwd', join(linkRoot, 'link'));
    const linked = `${linkRoot}.tar.gz`;
    await create({ gzip: true, cwd: linkRoot, file: linked }, ['link']);
    for (const [file, why] of [
      [evil, /outside the build folder/],
      [linked, /SymbolicLink/],
    ] as const) {
      const source = readFileSync(file).toString('base64');
      const res = await call<Build>(server, 'POST', '/api/v1/apps/net-probe/builds', {
        token: t.alice,
        body: { source },
      });
      assert.equal(res.status, 202, res.text);
      const build = await finished('net-probe', res.body.id, t.alice);
      assert.equal(build.state, 'failed');
      assert.match(build.error ?? '', why);
    }
    assert.ok(!existsSync(join(server.dataDir, 'outside.txt')));
    assert.ok(!existsSync(join(server.dataDir, 'builds', 'outside.txt')));
  });
});
