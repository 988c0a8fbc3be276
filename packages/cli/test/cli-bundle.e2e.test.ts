import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { currentBundle } from '../bin/current-bundle.js';
import { exec } from './cli-harness.ts';

// The microapp command ships as one bundle whose client commands load no server code and no TypeScript
// loader. This suite builds its own copy beside the shared one (packages/cli/dist stays untouched), inside
// the repository so that the packages the bundle leaves out resolve from it as they do from dist/.

const root = resolve(import.meta.dirname, '../../..');
const work = mkdtempSync(join(tmpdir(), 'microapp-bundle-'));
const dist = mkdtempSync(join(root, 'packages/cli/dist-test-'));
after(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(dist, { recursive: true, force: true });
});

type Meta = {
  outputs: Record<
    string,
    { inputs: Record<string, unknown>; imports: { path: string; kind: string; external?: boolean }[] }
  >;
};

/** Every file URL an ES module import resolved to while `main.js ARGS` ran. */
async function loaded(args: string[], env: Record<string, string> = {}) {
  const log = join(work, `loaded-${Math.random().toString(36).slice(2)}.txt`);
  writeFileSync(log, '');
  const r = await exec(
    process.execPath,
    ['--import', pathToFileURL(join(work, 'register.mjs')).href, join(dist, 'main.js'), ...args],
    { LOADED_LOG: log, HOME: work, MICROAPP_CONFIG_DIR: join(work, 'config'), ...env },
  );
  return { ...r, urls: readFileSync(log, 'utf8').split('\n').filter(Boolean) };
}

before(async () => {
  const r = await exec(process.execPath, [join(root, 'scripts/build-cli.js'), '--outdir', dist], {}, root);
  assert.equal(r.code, 0, r.stderr);
  // A resolve hook that writes down every module the program imports.
  writeFileSync(
    join(work, 'hooks.mjs'),
    `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(process.env.LOADED_LOG, result.url + '\\n');
  return result;
}
`,
  );
  writeFileSync(
    join(work, 'register.mjs'),
    `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(work, 'hooks.mjs')).href)});\n`,
  );
});

describe('the bundled CLI', () => {
  test('what every command loads at start holds no server code but the version, no YAML parser and no loader', () => {
    const meta = JSON.parse(readFileSync(join(dist, 'meta.json'), 'utf8')) as Meta;
    const key = (file: string) => Object.keys(meta.outputs).find((o) => resolve(root, o) === file)!;
    const seen = new Set<string>();
    const pending = [key(join(dist, 'main.js'))];
    while (pending.length > 0) {
      const output = pending.pop()!;
      if (seen.has(output)) continue;
      seen.add(output);
      for (const i of meta.outputs[output]!.imports)
        if (i.kind === 'import-statement') {
          assert.ok(!i.external || i.path.startsWith('node:'), `${output} imports ${i.path} at start`);
          if (!i.external) pending.push(i.path);
        }
    }
    const inputs = [...seen].flatMap((o) => Object.keys(meta.outputs[o]!.inputs));
    const server = inputs
      .filter((f) => f.startsWith('packages/server/') || f.startsWith('packages/rego/'))
      .sort();
    assert.deepEqual(server, ['packages/server/src/version.ts']);
    // The templates (read by `init` and `templates list`) and the YAML parser they need load with those.
    assert.deepEqual(
      inputs.filter((f) => f.startsWith('node_modules/yaml/')),
      [],
    );
  });

  test('a client command runs without TypeScript, the server or the YAML parser', async () => {
    const r = await loaded(['apps', 'list'], {
      MICROAPP_SERVER: 'http://127.0.0.1:1',
      MICROAPP_TOKEN: 'mat_x',
    });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /cannot reach the microapp server at http:\/\/127\.0\.0\.1:1 \(connect ECONNREFUSED/,
    );
    const ours = r.urls.filter((u) => u.startsWith('file:'));
    assert.ok(ours.length > 0, 'the hook saw the bundle load');
    assert.deepEqual(
      ours.filter((u) => /\/packages\/(server|rego)\/|\/node_modules\/(tsx|yaml|undici)\//.test(u)),
      [],
    );
    const version = await loaded(['--version']);
    assert.equal(version.stdout.trim(), JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
  });

  test('a command that runs server code loads it through tsx, and works', async () => {
    const r = await loaded(['--json', 'policy', 'test']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      r.urls.some((u) => u.includes('/packages/rego/src/')),
      'the policy engine was loaded',
    );
    assert.ok(
      r.urls.some((u) => u.includes('/node_modules/tsx/')),
      'through tsx',
    );
  });

  test('the libraries its commands load later work bundled: YAML (a manifest, its mistake by line), tar, zip', async () => {
    const offline = { MICROAPP_SERVER: 'http://127.0.0.1:1', MICROAPP_TOKEN: 'mat_x' };
    writeFileSync(join(work, 'bad.yaml'), 'name: x\nowner: [unclosed\n');
    const bad = await loaded(['register', '-f', join(work, 'bad.yaml')], offline);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /bad\.yaml:\d+:\d+: /);
    writeFileSync(join(work, 'microapp.yaml'), 'name: bundled\nowner: a@example.com\n');
    const good = await loaded(['register', '-f', join(work, 'microapp.yaml')], offline);
    assert.match(good.stderr, /cannot reach the microapp server/, 'parsed, then sent');
    const build = await loaded(['build', '--dir', work], offline);
    assert.match(build.stderr, /cannot reach the microapp server/, 'packed with tar, then sent');
    mkdirSync(join(work, 'osv'));
    writeFileSync(join(work, 'osv', 'a.json'), '{"id":"X"}');
    const zip = await loaded(['advisories', 'import', join(work, 'osv')], offline);
    assert.match(zip.stderr, /ECONNREFUSED|fetch failed|cannot reach/, 'zipped, then sent');
  });

  test('templates are found from the bundle (paths beside each source file are kept)', async () => {
    const r = await loaded(['--json', 'templates', 'list']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      (JSON.parse(r.stdout) as { name: string }[]).some((t) => t.name === 'tracker'),
      r.stdout,
    );
  });
});

describe('bin/microapp.js runs the bundle only while it is current', () => {
  const folder = join(work, 'current');
  const source = join(folder, 'src.ts');
  const distUrl = pathToFileURL(`${folder}/dist/`);
  const rootUrl = pathToFileURL(`${folder}/`);
  before(() => {
    mkdirSync(join(folder, 'dist'), { recursive: true });
    writeFileSync(source, 'export {}\n');
  });
  const built = (at: number, inputs = ['src.ts']) =>
    writeFileSync(join(folder, 'dist', 'inputs.json'), JSON.stringify({ builtAt: at, inputs }));

  test('newer than its inputs: the bundle', () => {
    utimesSync(source, new Date(1_000_000), new Date(1_000_000));
    built(2_000_000);
    assert.equal(currentBundle(distUrl, rootUrl), new URL('main.js', distUrl).href);
  });

  test('an input changed after the build, a missing input, or no record: the sources', () => {
    utimesSync(source, new Date(3_000_000), new Date(3_000_000));
    built(2_000_000);
    assert.equal(currentBundle(distUrl, rootUrl), null);
    built(4_000_000, ['src.ts', 'gone.ts']);
    assert.equal(currentBundle(distUrl, rootUrl), null);
    built(4_000_000, []);
    assert.equal(currentBundle(distUrl, rootUrl), null);
    rmSync(join(folder, 'dist', 'inputs.json'));
    assert.equal(currentBundle(distUrl, rootUrl), null);
  });
});
