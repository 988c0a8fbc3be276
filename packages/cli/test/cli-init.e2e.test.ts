import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../../server/test/harness.ts';
import { cli, exec } from './cli-harness.ts';

describe('microapp init: vetted templates, as a creator starts an app', () => {
  let server: TestServer;
  let dir: string;
  let env: Record<string, string>;
  before(async () => {
    server = await startTestServer('sqlite');
    dir = mkdtempSync(join(tmpdir(), 'microapp-init-'));
    env = { MICROAPP_CONFIG_DIR: join(dir, 'config'), MICROAPP_SERVER: server.url };
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('templates list shows the five templates with versions', async () => {
    const r = await cli(env, 'templates', 'list', '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      JSON.parse(r.stdout).map((t: { name: string; version: string }) => `${t.name}@${t.version}`),
      ['connector@1.1.0', 'dashboard@1.1.1', 'finance-reconciliation@1.1.0', 'form@1.2.0', 'tracker@1.0.0'],
    );
  });

  for (const template of ['form', 'connector', 'dashboard', 'finance-reconciliation', 'tracker']) {
    test(`${template}: scaffolds, its own tests pass (with dependencies: its whole lockfile is there), and it registers with its template recorded`, async () => {
      const app = join(dir, `t-${template}`);
      const made = await cli(
        env,
        'init',
        app,
        '--template',
        template,
        '--owner',
        'alice@example.com',
        '--department',
        'finance',
      );
      assert.equal(made.code, 0, `init: ${made.stderr}`);
      for (const f of [
        'microapp.yaml',
        'package.json',
        'package-lock.json',
        'README.md',
        '.github/workflows/microapp.yml',
        '.gitlab-ci.yml',
        'lib/identity.js',
      ])
        assert.ok(existsSync(join(app, f)), `${template} has ${f}`);
      const text = readdirSync(app, { recursive: true, withFileTypes: false }) as string[];
      for (const f of text.filter((p) => /\.(js|json|yaml|yml|md)$/.test(p)))
        assert.ok(!readFileSync(join(app, f), 'utf8').match(/\{\{\w+\}\}/), `no placeholder left in ${f}`);
      // A template with dependencies needs them installed first: the tracker's tests run in the sandboxed
      // pipeline against a registry in cli-template-tracker.e2e.test.ts.
      const deps = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')).dependencies ?? {};
      if (Object.keys(deps).length === 0) {
        const tests = await exec('npm', ['test'], {}, app);
        assert.equal(tests.code, 0, `npm test: ${tests.stdout}${tests.stderr}`);
      } else
        assert.ok(
          Object.keys(JSON.parse(readFileSync(join(app, 'package-lock.json'), 'utf8')).packages).length > 50,
          'a template with dependencies comes with its whole lockfile',
        );

      await cli(env, 'login', '--dev-user', 'alice@example.com');
      const reg = await cli(env, 'register', '--file', join(app, 'microapp.yaml'), '--json');
      assert.equal(reg.code, 0, `register: ${reg.stderr}`);
      const recorded = JSON.parse(reg.stdout).app.manifest.template;
      assert.deepEqual(recorded, {
        name: template,
        version: { tracker: '1.0.0', form: '1.2.0', dashboard: '1.1.1' }[template] ?? '1.1.0',
      });
    });
  }

  test('every parameter is validated before anything is written', async () => {
    const cases: [string[], RegExp][] = [
      [['init', join(dir, 'x1'), '-t', '../../etc', '--owner', 'alice@example.com'], /unknown template/],
      [
        ['init', join(dir, 'x2'), '-t', 'form', '--owner', 'alice@example.com', '--name', 'Bad_Name'],
        /DNS label/,
      ],
      [
        ['init', join(dir, 'x3'), '-t', 'form', '--owner', 'alice@example.com\nsecrets: [STOLEN]'],
        /not an e-mail address/,
      ],
      [
        [
          'init',
          join(dir, 'x4'),
          '-t',
          'form',
          '--owner',
          'alice@example.com',
          '--department',
          'finance}\nx: {',
        ],
        /lower-case/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await cli(env, ...args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, message);
      assert.ok(!existsSync(args[1]!), 'nothing written');
    }
    const full = join(dir, 'full');
    await exec('mkdir', ['-p', full]);
    writeFileSync(join(full, 'keep.txt'), 'mine');
    const r = await cli(env, 'init', full, '-t', 'form', '--owner', 'alice@example.com');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /not empty/);
  });
});
